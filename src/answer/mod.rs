//! What the owner of an info hash answers, pure: a parsed request and a
//! shard in, the reply bytes (and for WebSocket, the messages to relay) out.
//! No socket, clock or executor: the server calls these for the requests a
//! worker owns, received on its own sockets or forwarded by another worker
//! alike, and benchmarks and fuzzers call them without a server.

pub mod http;
pub mod udp;
pub mod ws;
