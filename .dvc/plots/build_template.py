"""Build `offline.html`, the page template `dvc plots show` uses for this project.

DVC's default page loads vega, vega-lite and vega-embed from a public CDN, so on a machine with no
internet its charts stay blank. This template inlines the same libraries (pinned in package.json,
the versions dvc-render asks the CDN for) and leaves out DVC's `{scripts}` placeholder, so the CDN
tags are dropped and the page draws offline. `.dvc/config` points `plots.html_template` at it.

Rebuild after changing package.json: `cd .dvc/plots && npm ci && python build_template.py`.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARIES = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")


def main() -> None:
    scripts = []
    for library in LIBRARIES:
        code = (HERE / "node_modules" / library).read_text(encoding="utf-8")
        if "</script" in code or "{plot_divs}" in code:
            raise ValueError(f"{library} cannot be inlined: it contains '</script' or the plot placeholder")
        scripts.append(f"<script>/* {library} */\n{code}\n</script>")
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            '<meta charset="utf-8">',
            "{refresh_tag}",
            "<title>mnist-cnn-dvc plots</title>",
            *scripts,
            "<style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>",
            "</head>",
            "<body>",
            "{plot_divs}",
            "</body>",
            "</html>",
            "",
        ]
    )
    (HERE / "offline.html").write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
