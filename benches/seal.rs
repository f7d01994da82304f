//! Cost of sealing and opening a blob (`facehub::crypto`: a 200 KB photo,
//! the size the download benchmark serves) against references on the same
//! bytes in the same run: one AES-256-GCM pass through `ring` (the cipher
//! alone, the floor) and one XChaCha20-Poly1305 pass (the cipher of v1
//! blobs).
//!
//!     cargo bench --bench seal

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use facehub::crypto::{CHUNK, Key, KeyRing, TAG, header_len};

const SIZE: usize = 200_000;

fn seal(ring: &KeyRing, plain: &[u8]) -> Vec<u8> {
    let mut w = ring.encryptor(b"att_bench");
    let mut out = Vec::with_capacity(plain.len() + 64 + plain.len() / CHUNK * TAG);
    w.update(plain, &mut out).unwrap();
    w.finish(&mut out).unwrap();
    out
}

fn open(ring: &KeyRing, sealed: &[u8]) -> usize {
    let len = header_len(sealed).unwrap();
    let mut rd = ring.decryptor(&sealed[..len], b"att_bench").unwrap();
    let mut opened = 0;
    for (i, c) in sealed[len..].chunks(CHUNK + TAG).enumerate() {
        let last = len + (i + 1) * (CHUNK + TAG) >= sealed.len();
        let mut chunk = c.to_vec();
        rd.open_chunk(&mut chunk, last).unwrap();
        opened += chunk.len();
    }
    opened
}

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new(Key::from_bytes(&[7u8; 32]).unwrap());
    let plain: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let sealed = seal(&ring, &plain);
    assert_eq!(open(&ring, &sealed), SIZE);

    let mut g = c.benchmark_group("seal_200KB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("facehub seal", |b| {
        b.iter(|| seal(&ring, black_box(&plain)))
    });
    g.bench_function("facehub open", |b| {
        b.iter(|| open(&ring, black_box(&sealed)))
    });
    let aes = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7u8; 32]).unwrap(),
    );
    let mut buf = plain.clone();
    g.bench_function("reference: AES-256-GCM pass (ring)", |b| {
        b.iter(|| {
            let nonce = ring::aead::Nonce::assume_unique_for_key([0; 12]);
            aes.seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), black_box(&mut buf))
                .unwrap()
        })
    });
    let x = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap();
    g.bench_function("reference: XChaCha20-Poly1305 pass (v1)", |b| {
        b.iter(|| {
            x.encrypt_in_place_detached(&[0u8; 24].into(), b"", black_box(&mut buf))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
