//! HTTPS and WSS on the tracker's one TCP port, beside plain HTTP and WS,
//! with a test certificate, and a certificate swapped by SIGHUP.

mod common;
use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use tungstenite::Message;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Writes a self-signed certificate for `localhost` and its key; returns the
/// certificate.
fn make_cert(dir: &Path) -> CertificateDer<'static> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
    c.cert.der().clone()
}

/// A TLS connection to the tracker that trusts `cert` only.
fn tls(t: &Tracker, cert: &CertificateDer<'static>) -> Result<Tls, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp(t.v4()));
    // Finish the handshake now, so a certificate error shows here.
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<rustls::Error>() {
                    Ok(r) => *r,
                    Err(other) => rustls::Error::General(other.to_string()),
                },
                None => rustls::Error::General("handshake".into()),
            })?;
    }
    Ok(s)
}

fn https_get(s: &mut Tls, target: &str) -> Response {
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    s.flush().unwrap();
    read_response(s).expect("a response over TLS")
}

#[test]
fn https_wss_and_plain_on_one_port_and_cert_reload() {
    let dir = scratch("tls");
    let cert = make_cert(&dir);
    let t = Tracker::start(&[
        "--tls-cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.join("key.pem").to_str().unwrap(),
    ]);
    let h = hash(1, 1);
    // HTTPS: two requests on one kept-alive TLS connection.
    let mut s = tls(&t, &cert).unwrap();
    let r = https_get(&mut s, &announce_target(h, peer_id(1), 6881, 0, ""));
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("8:completei1e"));
    let r = https_get(&mut s, &format!("/scrape?info_hash={}", esc(&h)));
    assert!(String::from_utf8_lossy(&r.body).contains("8:completei1e"));
    // Plain HTTP on the same port.
    let r = get(t.v4(), &announce_target(h, peer_id(2), 6882, 5, ""));
    assert!(String::from_utf8_lossy(&r.body).contains("10:incompletei1e"));
    // WSS: a WebSocket over the TLS connection.
    let s = tls(&t, &cert).unwrap();
    let (mut ws, resp) = tungstenite::client(format!("wss://localhost:{}/", t.port), s).unwrap();
    assert_eq!(resp.status(), 101);
    let bin: String = h.iter().map(|&c| c as char).collect();
    ws.send(Message::text(
        json!({"action": "scrape", "info_hash": bin}).to_string(),
    ))
    .unwrap();
    let reply: Value = match ws.read().unwrap() {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reply["files"][&bin]["complete"], 1);
    assert_eq!(reply["files"][&bin]["incomplete"], 1);

    // A new certificate, and SIGHUP: new handshakes present it.
    let fresh = make_cert(&dir);
    assert_ne!(fresh, cert);
    t.hup();
    assert!(eventually(|| tls(&t, &fresh).is_ok()));
    assert!(tls(&t, &cert).is_err(), "the old certificate is gone");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_key_stops_the_start() {
    let dir = scratch("tls-bad");
    make_cert(&dir);
    std::fs::write(
        dir.join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = run_tracker(&[
        "-p",
        "0",
        "--tls-cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.join("key.pem").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key.pem"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
