//! Request decoding, Relay's hand-written decoder (`connection::codec::RequestParser`) beside
//! the `redis-protocol` crate's RESP2 decoder, on the same pipelined input: the question is
//! whether the card's crate should replace the hand-written one.
//!
//! `cargo bench --bench decoder` measures (release build); under `cargo test` it decodes a
//! small input once with both and checks they agree, so the comparison stays honest.
//!
//! Each decoder gets the same buffer of N requests as a client pipelines them and takes them
//! out one at a time, arguments as `Bytes` that share the buffer (what the server needs to
//! run a command). Workloads: small PUBLISHes (the pub/sub hot path), XADDs with three fields,
//! and one 64 KiB SET value.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use relay::connection::codec::{ParserLimits, RequestParser};
use std::time::Instant;

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    relay::resp::encode_command(&mut out, args);
    out
}

fn workload(name: &str, n: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..n {
        let v = format!("{i:010}");
        let cmd: Vec<Vec<u8>> = match name {
            "publish" => vec![b"PUBLISH".to_vec(), b"news".to_vec(), v.into_bytes()],
            "xadd" => vec![
                b"XADD".to_vec(),
                b"events".to_vec(),
                b"*".to_vec(),
                b"field-one".to_vec(),
                v.into_bytes(),
                b"field-two".to_vec(),
                b"0123456789".to_vec(),
                b"field-3".to_vec(),
                b"abcdefghij".to_vec(),
            ],
            _ => vec![b"SET".to_vec(), b"big".to_vec(), vec![b'x'; 64 * 1024]],
        };
        let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
        wire.extend(encode(&refs));
    }
    wire
}

/// Relay's decoder: every request of `wire`, as argument lists.
fn relay_decode(wire: &[u8]) -> Vec<Vec<Bytes>> {
    let limits = ParserLimits {
        max_bulk_len: 512 << 20,
        query_buffer_limit: 1 << 30,
    };
    let mut buf = BytesMut::from(wire);
    let mut parser = RequestParser::default();
    let mut out = Vec::new();
    while let Ok(Some(args)) = parser.parse(&mut buf, &limits) {
        out.push(args);
    }
    out
}

/// redis-protocol's decoder on the same bytes, frames turned into argument lists.
fn crate_decode(wire: &[u8]) -> Vec<Vec<Bytes>> {
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Ok(Some((frame, _, _))) = decode_bytes_mut(&mut buf) {
        if let BytesFrame::Array(items) = frame {
            out.push(
                items
                    .into_iter()
                    .filter_map(|f| match f {
                        BytesFrame::BulkString(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Requests per second decoding `wire` (`n` requests) with `f`, best of `rounds`.
fn rate(wire: &[u8], n: usize, rounds: usize, f: fn(&[u8]) -> Vec<Vec<Bytes>>) -> f64 {
    let mut best = 0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        let got = f(wire);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(got.len(), n);
        best = best.max(n as f64 / secs);
    }
    best
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    for (name, n) in [("publish", 200_000), ("xadd", 100_000), ("set-64k", 2_000)] {
        let n = if benching { n } else { 50 };
        let wire = workload(name, n);
        // Both decoders must read the same requests, or the comparison means nothing.
        assert_eq!(relay_decode(&wire), crate_decode(&wire), "{name}");
        if !benching {
            continue;
        }
        let relay = rate(&wire, n, 7, relay_decode);
        let krate = rate(&wire, n, 7, crate_decode);
        println!(
            "{name:>8}: relay {:>12.0} req/s, redis-protocol {:>12.0} req/s, ratio {:.2}",
            relay,
            krate,
            relay / krate
        );
    }
    if !benching {
        println!("decoder: both decoders agree (run `cargo bench --bench decoder` to measure)");
    }
}
