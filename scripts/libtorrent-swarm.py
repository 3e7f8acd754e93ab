#!/usr/bin/env python3
# Real-client check: two libtorrent sessions on loopback find each other only
# through the tracker at argv[1], download 1 MiB, and scrape. Needs Debian's
# python3-libtorrent (apt-get install python3-libtorrent). Exit 0 when the
# download completes intact.
#   /usr/bin/python3 scripts/libtorrent-swarm.py udp://127.0.0.1:8000/announce
# ssrf_mitigation is off because libtorrent otherwise refuses to scrape a tracker
# on localhost (only paths ending in /announce may be asked there).
import libtorrent as lt, os, sys, time, tempfile, shutil
url = sys.argv[1]
base = tempfile.mkdtemp()
os.makedirs(f"{base}/seed"); os.makedirs(f"{base}/leech")
data = os.urandom(1 << 20)
open(f"{base}/seed/file.bin", "wb").write(data)
fs = lt.file_storage(); lt.add_files(fs, f"{base}/seed/file.bin")
ct = lt.create_torrent(fs); ct.add_tracker(url); lt.set_piece_hashes(ct, f"{base}/seed")
ti = lt.torrent_info(ct.generate())
def session(port):
    return lt.session({"listen_interfaces": f"127.0.0.1:{port},[::1]:{port}", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True, "ssrf_mitigation": False,
        "alert_mask": lt.alert.category_t.tracker_notification | lt.alert.category_t.error_notification})
s1, s2 = session(46881), session(46882)
h1 = s1.add_torrent({"ti": ti, "save_path": f"{base}/seed"})
h2 = s2.add_torrent({"ti": lt.torrent_info(ct.generate()), "save_path": f"{base}/leech"})
deadline = time.time() + 60
while time.time() < deadline and not h2.status().is_seeding:
    time.sleep(0.2)
    for s, n in ((s1, "seed"), (s2, "leech")):
        for a in s.pop_alerts():
            if isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert, lt.tracker_warning_alert)):
                print(n, type(a).__name__, a.message())
ok = h2.status().is_seeding and open(f"{base}/leech/file.bin", "rb").read() == data
print("download complete and identical:", ok)
h2.scrape_tracker(); time.sleep(1.5)
for a in s2.pop_alerts():
    if isinstance(a, (lt.scrape_reply_alert, lt.scrape_failed_alert)): print("scrape:", a.message())
shutil.rmtree(base)
sys.exit(0 if ok else 1)
