"""Publish asv's HTML report so that it works without internet, and link every commit.

Usage (from the repository root)::

    python tools/publish_offline.py [ASV PUBLISH ARGS...]

1. runs ``asv publish`` (into ``html_dir`` of asv.conf.json, ``.asv/html``);
2. installs the JavaScript and CSS that asv's page loads from CDNs (jQuery, flot,
   Bootstrap, ...) from npm, at the versions in :data:`NPM_PACKAGES`, into a temporary
   folder (``npm install --prefix``; nothing third-party is committed here), copies the
   files the page needs into ``html_dir/vendor/``, and points every ``<script>`` and
   ``<link>`` of the report's pages at them;
3. writes ``commits.html``: one entry per benchmarked commit (``git show --stat``),
   anchored by its hash, which ``show_commit_url`` ("commits.html#") links to;
4. changes two defaults of the published copy of asv's scripts (:data:`JS_PATCHES`):
   graphs open with a logarithmic time axis (the naive backend is a thousand times
   slower than the others; "log scale" toggles it off), and the summary grid draws
   points, so that a single benchmarked commit shows as a dot, not an empty box.

With no stored results (``asv run --dry-run`` stores none), or none of a commit on the
branches asv graphs, it refuses, exit status 1 and one line, rather than publish a page
of headings.

Open the report through a local server (``asv preview``, or ``python -m http.server``
in ``.asv/html``): browsers do not let a page read its JSON data from ``file://``.
``tools/check_report.py`` opens it in headless Chromium with no network access.
"""

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: npm package@version -> {file in the package: file under vendor/}. stupidtable 1.0.1
#: (asv's CDN copy) is not on npm; 1.1.3 has the same ``$.fn.stupidtable`` API.
NPM_PACKAGES = {
    "jquery@3.3.1": {"dist/jquery.min.js": "jquery.min.js"},
    "flot@0.8.3": {name: name for name in ("jquery.flot.js", "jquery.flot.time.js",
                                           "jquery.flot.selection.js", "jquery.flot.categories.js")},
    "flot-orderbars@1.0.0": {"js/jquery.flot.orderBars.js": "jquery.flot.orderBars.js"},
    "stupid-table-plugin@1.1.3": {"stupidtable.min.js": "stupidtable.min.js"},
    "blueimp-md5@2.19.0": {"js/md5.min.js": "md5.min.js"},
    "bootstrap@3.1.1": {"dist/js/bootstrap.min.js": "bootstrap.min.js",
                        "dist/css/bootstrap.min.css": "css/bootstrap.min.css",
                        **{f"dist/fonts/glyphicons-halflings-regular.{ext}": f"fonts/glyphicons-halflings-regular.{ext}"
                           for ext in ("eot", "svg", "ttf", "woff")}},
}
#: The last path part of a CDN address -> the vendor/ file that replaces it.
LOCAL = {
    "jquery-3.3.1.min.js": "jquery.min.js",
    "jquery.flot.min.js": "jquery.flot.js",
    "jquery.flot.time.min.js": "jquery.flot.time.js",
    "jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.min.js",
    "md5.min.js": "md5.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "css/bootstrap.min.css",
}
#: A ``src`` or ``href`` attribute pointing off the machine.
REMOTE = re.compile(r'(src|href)="(https?:)?//[^"]*/([^"/]+)"')


def asv_config():
    """asv.conf.json as a dict (asv's JSON allows // comments)."""
    return json.loads(re.sub(r"^\s*//.*$", "", (ROOT / "asv.conf.json").read_text(), flags=re.M))


def html_dir():
    """``html_dir`` of asv.conf.json."""
    return ROOT / asv_config().get("html_dir", "html")


def stored_results(results_dir=None):
    """The result files asv stored (one per machine, commit and environment); machine.json
    and benchmarks.json describe, they hold no result."""
    results_dir = results_dir or ROOT / asv_config().get("results_dir", "results")
    return [p for p in Path(results_dir).glob("*/*.json") if p.name != "machine.json"]


#: file of asv's www folder -> (text, replacement); each text must occur once.
JS_PATCHES = {
    "graphdisplay.js": [
        # open with a log time axis unless the address asks for another; "log scale" off is 'linear'
        ("        if (params['y-axis-scale']) {",
         "        if (!params['y-axis-scale']) { params['y-axis-scale'] = ['log']; }\n"
         "        if (params['y-axis-scale']) {"),
        ("update_state_url({'y-axis-scale': log_scale ? ['log']: []});",
         "update_state_url({'y-axis-scale': log_scale ? ['log'] : ['linear']});"),
    ],
    "summarygrid.js": [
        # one commit is one point: lines alone draw nothing
        ("                            lineWidth: 2\n                        },\n",
         "                            lineWidth: 2\n                        },\n"
         "                        points: {show: true, radius: 2},\n"),
    ],
}


def patch_scripts(out):
    """Apply :data:`JS_PATCHES` to the published scripts in ``out``; raises on one that no longer fits."""
    for name, patches in JS_PATCHES.items():
        path = out / name
        text = path.read_text()
        for old, new in patches:
            if text.count(old) != 1:
                raise SystemExit(f"publish_offline: {name} of this asv version has no {old.strip()[:40]!r}; "
                                 "update JS_PATCHES")
            text = text.replace(old, new)
        path.write_text(text)


def install_vendor(dest):
    """npm-install :data:`NPM_PACKAGES` into a temporary folder and copy their files to ``dest``."""
    if shutil.which("npm") is None:
        sys.exit("publish_offline: npm is needed to fetch jQuery, flot and Bootstrap (apt-get install npm)")
    with tempfile.TemporaryDirectory(prefix="digitbench-asv-js-") as tmp:
        subprocess.run(["npm", "install", "--prefix", tmp, "--no-save", "--ignore-scripts", "--no-audit",
                        "--no-fund", "--loglevel=error", *NPM_PACKAGES], check=True)
        for spec, files in NPM_PACKAGES.items():
            package = Path(tmp, "node_modules", spec.rsplit("@", 1)[0])
            for source, target in files.items():
                (dest / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(package / source, dest / target)


def localize(page):
    """``page``'s HTML with every CDN script and stylesheet pointed at vendor/; raises on one it cannot."""
    page = re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", page)

    def local(match):
        attribute, name = match.group(1), match.group(3)
        if attribute == "href" and name not in LOCAL:  # an ordinary link (asv's home page)
            return match.group(0)
        if name not in LOCAL:
            raise SystemExit(f"publish_offline: no local copy for {match.group(0)}; add it to NPM_PACKAGES")
        return f'{attribute}="vendor/{LOCAL[name]}"'

    return REMOTE.sub(local, page)


def write_commits(out):
    """``commits.html``: ``git show --stat`` of each commit in the report, anchored by its full hash."""
    revisions = json.loads((out / "index.json").read_text()).get("revision_to_hash", {})
    entries = []
    for _, commit in sorted(revisions.items(), key=lambda item: -int(item[0])):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", "--stat", "--format=%H%n%an, %ad%n%n%B",
                                commit], capture_output=True, text=True)
        text = shown.stdout if shown.returncode == 0 else f"{commit}\n(not in this clone)"
        entries.append(f'<section id="{commit}"><pre>{html.escape(text)}</pre></section>')
    (out / "commits.html").write_text(
        "<!DOCTYPE html><meta charset='utf-8'><title>digitbench commits</title>"
        "<style>section:target{background:#ffc}pre{white-space:pre-wrap}</style>"
        "<h1>Commits in the benchmark report</h1>\n" + "\n".join(entries) + "\n")


def main(argv):
    if not stored_results():
        sys.exit("publish_offline: no benchmark results stored in .asv/results (asv run --dry-run stores none); "
                 "run, e.g., DIGITBENCH_BENCH_PROFILE=fast asv run --quick -b Forward HEAD^! first")
    subprocess.run([sys.executable, "-m", "asv", "publish", *argv], cwd=ROOT, check=True)
    out = html_dir()
    if not any((out / "graphs").rglob("*.json")):
        branches = ", ".join(asv_config().get("branches", ["main"]))
        sys.exit(f"publish_offline: asv drew no graph: no stored result is of a commit on {branches} (the branches "
                 "in asv.conf.json); benchmark a commit of those, or add its branch there")
    patch_scripts(out)
    install_vendor(out / "vendor")
    for page in out.glob("*.html"):
        page.write_text(localize(page.read_text()))
    write_commits(out)
    print(f"publish_offline: {out} works offline (serve it: python -m http.server -d {out})")


if __name__ == "__main__":
    main(sys.argv[1:])
