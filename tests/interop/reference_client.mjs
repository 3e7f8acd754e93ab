// Drives the reference JavaScript client (npm bittorrent-tracker@10.0.12)
// against a tracker: two peers go through start, update, complete, scrape,
// stop, then a static multi-scrape. Prints one line per event, in order,
// for the Rust test to compare. Usage: node reference_client.mjs URL HASH_A HASH_B
import Client from 'bittorrent-tracker'

const [url, hashA, hashB] = process.argv.slice(2)
const left = { 6881: 100, 6882: 0 }
const say = (line) => console.log(line)
const fail = (what, err) => { say(`${what} ${err && err.message}`); process.exit(1) }
setTimeout(() => fail('timeout', new Error('no answer within 20 s')), 20000).unref()

function peer (port, idChar) {
  const c = new Client({
    infoHash: hashA,
    peerId: Buffer.from('-WW0100-' + idChar.repeat(12)),
    announce: [url],
    port,
    getAnnounceOpts: () => ({ uploaded: 0, downloaded: 0, left: left[port] })
  })
  c.on('error', (e) => fail('error', e))
  c.on('warning', (e) => fail('warning', e))
  c.on('update', (d) => say(`update ${port} complete=${d.complete} incomplete=${d.incomplete}`))
  c.on('peer', (p) => say(`peer ${port} ${p}`))
  c.on('scrape', (d) => say(`scrape ${port} complete=${d.complete} incomplete=${d.incomplete} downloaded=${d.downloaded}`))
  return c
}
const next = (c, ev) => new Promise((resolve) => c.once(ev, resolve))
const tick = () => new Promise((resolve) => setImmediate(resolve))

const a = peer(6881, 'a')
const b = peer(6882, 'b')
let n = next(a, 'update'); a.start(); await n; await tick()
n = next(b, 'update'); b.start(); await n; await tick()
n = next(a, 'update'); a.update(); await n; await tick()
left[6881] = 0
n = next(a, 'update'); a.complete(); await n; await tick()
n = next(a, 'scrape'); a.scrape(); await n; await tick()
n = next(b, 'update'); b.stop(); await n; await tick()
n = next(a, 'update'); a.stop(); await n; await tick()
a.destroy(); b.destroy()

// The reference's static scrape hands its hashes straight to the transport:
// its HTTP code wants hex strings, its UDP code Buffers (hex strings there go
// out as 40 ASCII bytes each). Give each what it can send.
const hashes = url.startsWith('udp:')
  ? [Buffer.from(hashA, 'hex'), Buffer.from(hashB, 'hex')]
  : [hashA, hashB]
Client.scrape({ announce: url, infoHash: hashes }, (err, results) => {
  if (err) fail('multi-scrape', err)
  for (const h of Object.keys(results).sort()) {
    const r = results[h]
    say(`multiscrape ${h} complete=${r.complete} incomplete=${r.incomplete} downloaded=${r.downloaded}`)
  }
  process.exit(0)
})
