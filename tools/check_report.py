"""Open a published asv graph page in headless Chromium, with no network, and find a plotted series.

Usage (after ``python tools/publish_offline.py``)::

    python tools/check_report.py [--benchmark NAME] [--screenshot PNG]

The report (``.asv/html``) is copied to a temporary folder, a probe script is added to
the copy's ``index.html`` (it waits for flot's plot in ``#main-graph`` and writes the
number of series and points into the page), the copy is served on 127.0.0.1 and
Chromium's DOM dump is read. No network: the whole check runs in a new network
namespace that has only the loopback device (``unshare --net``; root, or a kernel that
allows unprivileged user namespaces); where that is not allowed, Chromium's resolver
is told that every host but 127.0.0.1 does not exist. Exit 0 with one line when a
series with points is plotted, 1 otherwise.
"""

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from publish_offline import html_dir  # noqa: E402

PROBE = """<script>
(function poll(n) {
  var plot = window.jQuery && jQuery('#main-graph').data('plot');
  var series = 0, points = 0;
  if (plot) { plot.getData().forEach(function (s) { var n = (s.data || []).filter(function (p) { return p[1] !== null; }).length; if (n) { series++; points += n; } }); }
  if (series > 0 || n > 300) {
    var out = document.createElement('pre');
    out.id = 'digitbench-check';
    out.textContent = 'series=' + series + ' points=' + points + ' jquery=' + !!window.jQuery +
                      ' flot=' + !!(window.jQuery && jQuery.plot);
    document.body.appendChild(out);
  } else { setTimeout(function () { poll(n + 1); }, 50); }
})(0);
</script>
"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--hide-scrollbars", "--virtual-time-budget=20000"]
ISOLATED = "DIGITBENCH_CHECK_ISOLATED"


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("check_report: Chromium not found (Debian: apt-get install -y chromium)")


def serve(folder):
    """Serve ``folder`` on 127.0.0.1 in a daemon thread; the port."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def browse(url, extra, profile):
    """Run Chromium on ``url`` with ``extra`` flags and a fresh profile folder; its stdout."""
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
    if not os.environ.get(ISOLATED):  # no network namespace: no host resolves but this one
        cmd.insert(1, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def check(benchmark, screenshot):
    report = html_dir()
    if not (report / "index.json").is_file():
        sys.exit(f"check_report: no published report in {report} (run tools/publish_offline.py)")
    with tempfile.TemporaryDirectory(prefix="digitbench-report-") as tmp:
        copy = Path(tmp, "html")
        shutil.copytree(report, copy)
        index = copy / "index.html"
        index.write_text(index.read_text().replace("</body>", PROBE + "</body>"))
        port = serve(copy)
        url = f"http://127.0.0.1:{port}/index.html#{benchmark}"
        dom = browse(url, ["--dump-dom"], Path(tmp, "profile-dom"))
        if screenshot:
            (copy / "index.html").write_text((report / "index.html").read_text())
            browse(url, [f"--screenshot={Path(screenshot).resolve()}", "--window-size=1280,800"],
                   Path(tmp, "profile-shot"))
    found = re.search(r'id="digitbench-check">([^<]*)<', dom)
    network = "no network namespace" if os.environ.get(ISOLATED) else "host resolver blocked"
    if not found:
        print(f"check_report: the page did not finish loading ({network}): {url}")
        return 1
    series = int(re.search(r"series=(\d+)", found.group(1)).group(1))
    print(f"check_report: {benchmark}: {found.group(1)} ({network}){'' if series else ': NOTHING PLOTTED'}")
    return 0 if series else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", default="bench_forward.Forward.time_forward")
    parser.add_argument("--screenshot", help="also save a PNG of the page (no probe) here")
    args = parser.parse_args(argv)
    namespace = ["unshare", "--net", "--map-root-user"]
    if not os.environ.get(ISOLATED) and shutil.which("unshare") and \
            subprocess.run([*namespace, "true"], capture_output=True).returncode == 0:
        return subprocess.run([*namespace, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable,
                               __file__, *(argv if argv is not None else sys.argv[1:])],
                              env={**os.environ, ISOLATED: "1"}).returncode
    if not os.environ.get(ISOLATED):
        print("check_report: cannot make a network namespace here; blocking Chromium's resolver instead")
    return check(args.benchmark, args.screenshot)


if __name__ == "__main__":
    sys.exit(main())
