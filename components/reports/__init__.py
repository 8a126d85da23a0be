"""The HTML pages meshserve writes (benchmark, gate, analysis): Jinja2 templates with one layout and one checks
table (pages.py), and the plots they embed (plots.py)."""
