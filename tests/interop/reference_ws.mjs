// The reference JavaScript client (npm bittorrent-tracker@10.0.12) over
// ws://, announcing with no offers (numwant 0, an empty wrtc), then a raw `ws`
// client pair relaying an offer and its answer through the tracker. Prints one
// line per event for the Rust test. Usage: node reference_ws.mjs URL HASH_HEX
import Client from 'bittorrent-tracker'
import WebSocket from 'ws'

const [url, hashHex] = process.argv.slice(2)
const say = (line) => console.log(line)
const fail = (what, err) => { say(`${what} ${err && err.message}`); process.exit(1) }
setTimeout(() => fail('timeout', new Error('no answer within 20 s')), 20000).unref()

// The reference client pools one WebSocket per tracker URL, and every client
// on it hears every reply for its info hash. This tracker accepts any path, so
// each peer gets a URL, and a connection, of its own.
function peer (idChar, left) {
  const c = new Client({
    infoHash: hashHex,
    peerId: Buffer.from('-WW0100-' + idChar.repeat(12)),
    announce: [`${url}/${idChar}`],
    port: 6881,
    wrtc: {},
    getAnnounceOpts: () => ({ numwant: 0, uploaded: 0, downloaded: 0, left })
  })
  c.on('error', (e) => fail('error', e))
  c.on('warning', (e) => fail('warning', e))
  c.on('update', (d) => say(`update ${idChar} complete=${d.complete} incomplete=${d.incomplete}`))
  return c
}
const next = (c, ev) => new Promise((resolve) => c.once(ev, resolve))

const a = peer('a', 100)
const b = peer('b', 0)
let n = next(a, 'update'); a.start(); await n
n = next(b, 'update'); b.start(); await n
n = next(a, 'update'); a.update(); await n
n = next(b, 'update'); b.stop(); await n
a.destroy(); b.destroy()

// Raw clients: an offer from X reaches Y, Y's answer reaches X.
const hash = Buffer.from(hashHex, 'hex').toString('latin1')
const open = (u) => new Promise((resolve, reject) => { const w = new WebSocket(u); w.on('open', () => resolve(w)); w.on('error', reject) })
const recv = (w) => new Promise((resolve) => w.once('message', (m) => resolve(JSON.parse(m.toString()))))
const x = await open(url)
const y = await open(url)
y.send(JSON.stringify({ action: 'announce', info_hash: hash, peer_id: 'YYYYYYYYYYYYYYYYYYYY', left: 1, event: 'started', offers: [] }))
await recv(y)
const offerAtY = recv(y)
x.send(JSON.stringify({ action: 'announce', info_hash: hash, peer_id: 'XXXXXXXXXXXXXXXXXXXX', left: 1, event: 'started',
  offers: [{ offer: { type: 'offer', sdp: 'sdp-x' }, offer_id: 'oooooooooooooooooooo' }] }))
await recv(x)
const o = await offerAtY
say(`offer at y from=${o.peer_id} offer_id=${o.offer_id} sdp=${o.offer.sdp}`)
const answerAtX = recv(x)
y.send(JSON.stringify({ action: 'announce', info_hash: hash, peer_id: 'YYYYYYYYYYYYYYYYYYYY', to_peer_id: o.peer_id,
  answer: { type: 'answer', sdp: 'sdp-y' }, offer_id: o.offer_id }))
const ans = await answerAtX
say(`answer at x from=${ans.peer_id} offer_id=${ans.offer_id} sdp=${ans.answer.sdp}`)
x.close(); y.close()
process.exit(0)
