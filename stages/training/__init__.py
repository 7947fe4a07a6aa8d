"""Training: build a declared model, fit it, back it up per epoch, save and score it."""
