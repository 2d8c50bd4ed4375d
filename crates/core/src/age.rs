//! Files sealed to a print shop (印刷厂) with the age format, v1
//! (age-encryption.org/v1), to one X25519 recipient (`age1…`), so that an
//! export with passwords is useless without the print shop's private key;
//! the shop opens it with the standard `age` tool (`age -d -i key.txt`).
//!
//! What is written, as the format's specification gives it:
//! - a random 16-byte file key;
//! - one `X25519` stanza: an ephemeral share, and the file key sealed
//!   with ChaCha20-Poly1305 (zero nonce) under HKDF-SHA256(shared secret,
//!   salt = share ‖ recipient, info "age-encryption.org/v1/X25519");
//! - the header's MAC: HMAC-SHA256 under HKDF(file key, info "header")
//!   over the header up to and including `---`;
//! - a 16-byte nonce, then the payload in 64 KiB chunks, each sealed with
//!   ChaCha20-Poly1305 under HKDF(file key, salt = nonce, info "payload"),
//!   its nonce an 11-byte big-endian counter and a last-chunk flag.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::Mac;
use rand::RngCore;
use sha2::Sha256;
use std::io::{Read, Write};

const CHUNK: usize = 64 * 1024;
const RECIPIENT_HRP: &str = "age";

/// A print shop's public key, as `age-keygen` prints it (`age1…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient([u8; 32]);

impl Recipient {
    /// Reads an `age1…` recipient; the error says what is wrong in Chinese.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad =
            || "公钥须为 age1 开头的 age X25519 公钥（age-keygen 输出的 Public key）".to_owned();
        let (hrp, bytes) = bech32_decode(text).ok_or_else(bad)?;
        if hrp != RECIPIENT_HRP {
            return Err(bad());
        }
        let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Recipient(key))
    }

    /// The `age1…` text, lower case.
    pub fn encode(&self) -> String {
        bech32_encode(RECIPIENT_HRP, &self.0)
    }
}

fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

fn seal(key: &[u8; 32], nonce: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(nonce.into(), plaintext)
        .expect("ChaCha20-Poly1305 seals any length kaquan writes")
}

/// The header for `recipient` and `file_key`, with its MAC line.
fn header(recipient: &Recipient, file_key: &[u8; 16], ephemeral: [u8; 32]) -> Vec<u8> {
    let secret = x25519_dalek::StaticSecret::from(ephemeral);
    let share = x25519_dalek::PublicKey::from(&secret);
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(recipient.0));
    let mut salt = Vec::with_capacity(64);
    salt.extend_from_slice(share.as_bytes());
    salt.extend_from_slice(&recipient.0);
    let wrap_key = hkdf(shared.as_bytes(), &salt, b"age-encryption.org/v1/X25519");
    let body = seal(&wrap_key, &[0; 12], file_key);
    let mut text = String::from("age-encryption.org/v1\n");
    text.push_str(&format!(
        "-> X25519 {}\n",
        STANDARD_NO_PAD.encode(share.as_bytes())
    ));
    // 32 bytes are 43 characters: one line, shorter than the 64-column wrap.
    text.push_str(&STANDARD_NO_PAD.encode(body));
    text.push_str("\n---");
    let mac_key = hkdf(file_key, &[], b"header");
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&mac_key).expect("any key length");
    mac.update(text.as_bytes());
    text.push(' ');
    text.push_str(&STANDARD_NO_PAD.encode(mac.finalize().into_bytes()));
    text.push('\n');
    text.into_bytes()
}

/// Seals everything `input` reads to `recipient`, writing the age file to
/// `output`; returns the bytes written.
pub fn encrypt(
    recipient: &Recipient,
    input: &mut impl Read,
    output: &mut impl Write,
) -> std::io::Result<u64> {
    let mut rng = rand::rngs::OsRng;
    let mut file_key = [0u8; 16];
    rng.fill_bytes(&mut file_key);
    let mut ephemeral = [0u8; 32];
    rng.fill_bytes(&mut ephemeral);
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    encrypt_with(recipient, (file_key, ephemeral, nonce), input, output)
}

fn encrypt_with(
    recipient: &Recipient,
    (file_key, ephemeral, nonce): ([u8; 16], [u8; 32], [u8; 16]),
    input: &mut impl Read,
    output: &mut impl Write,
) -> std::io::Result<u64> {
    let head = header(recipient, &file_key, ephemeral);
    output.write_all(&head)?;
    output.write_all(&nonce)?;
    let mut written = (head.len() + nonce.len()) as u64;
    let payload_key = hkdf(&file_key, &nonce, b"payload");
    // Read one chunk ahead: the last chunk carries the flag, and only an
    // empty file has an empty last chunk.
    let mut current = read_chunk(input)?;
    let mut counter: u128 = 0;
    loop {
        let next = if current.len() == CHUNK {
            read_chunk(input)?
        } else {
            Vec::new()
        };
        let last = next.is_empty();
        let mut chunk_nonce = [0u8; 12];
        chunk_nonce[..11].copy_from_slice(&counter.to_be_bytes()[5..16]);
        chunk_nonce[11] = u8::from(last);
        let sealed = seal(&payload_key, &chunk_nonce, &current);
        output.write_all(&sealed)?;
        written += sealed.len() as u64;
        if last {
            return Ok(written);
        }
        counter += 1;
        current = next;
    }
}

fn read_chunk(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

// ---- bech32 (BIP 173), as age keys are written ------------------------------------

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut check: u32 = 1;
    for v in values {
        let top = check >> 25;
        check = ((check & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= g;
            }
        }
    }
    check
}

fn hrp_expand(hrp: &str) -> Vec<u8> {
    let mut out: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    out.push(0);
    out.extend(hrp.bytes().map(|b| b & 31));
    out
}

/// Regroups bits; `None` when padding is left over where none may be.
fn convert_bits(data: &[u8], from: u32, to: u32, pad: bool) -> Option<Vec<u8>> {
    let (mut acc, mut bits) = (0u32, 0u32);
    let max = (1u32 << to) - 1;
    let mut out = Vec::new();
    for &value in data {
        acc = (acc << from) | u32::from(value);
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & max) as u8);
        }
    }
    if pad {
        if bits > 0 {
            out.push(((acc << (to - bits)) & max) as u8);
        }
    } else if bits >= from || ((acc << (to - bits)) & max) != 0 {
        return None;
    }
    Some(out)
}

fn bech32_encode(hrp: &str, bytes: &[u8]) -> String {
    let data = convert_bits(bytes, 8, 5, true).expect("padding allowed");
    let values = hrp_expand(hrp)
        .into_iter()
        .chain(data.iter().copied())
        .chain([0; 6]);
    let check = polymod(values) ^ 1;
    let mut text = format!("{hrp}1");
    for d in data
        .into_iter()
        .chain((0..6).map(|i| ((check >> (5 * (5 - i))) & 31) as u8))
    {
        text.push(CHARSET[usize::from(d)] as char);
    }
    text
}

fn bech32_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let lower = text.to_ascii_lowercase();
    if text != lower && text != text.to_ascii_uppercase() {
        return None;
    }
    let split = lower.rfind('1')?;
    let (hrp, data) = (&lower[..split], &lower[split + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return None;
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()?;
    let expanded = hrp_expand(hrp).into_iter().chain(values.iter().copied());
    if polymod(expanded) != 1 {
        return None;
    }
    let bytes = convert_bits(&values[..values.len() - 6], 5, 8, false)?;
    Some((hrp.to_owned(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload's chunk size as the age spec writes it, not as the
    /// writer's constant says.
    const SPEC_CHUNK: usize = 65_536;

    /// Opens an age file for one X25519 identity, as the format says; the
    /// test's own reader, so the writer is checked against the spec's
    /// steps (the `age` tool checks it in the CLI and web tests).
    fn decrypt(identity: [u8; 32], file: &[u8]) -> Option<Vec<u8>> {
        let end = file.windows(4).position(|w| w == b"\n---")? + 4;
        let header = std::str::from_utf8(&file[..end]).ok()?;
        let rest = &file[end..];
        let mac_end = rest.iter().position(|&b| b == b'\n')?;
        let mac = STANDARD_NO_PAD.decode(rest[1..mac_end].trim_ascii()).ok()?;
        let payload = &rest[mac_end + 1..];
        let mut lines = header.lines();
        assert_eq!(lines.next()?, "age-encryption.org/v1");
        let share: [u8; 32] = STANDARD_NO_PAD
            .decode(lines.next()?.strip_prefix("-> X25519 ")?)
            .ok()?
            .try_into()
            .ok()?;
        let body = STANDARD_NO_PAD.decode(lines.next()?).ok()?;
        let secret = x25519_dalek::StaticSecret::from(identity);
        let public = x25519_dalek::PublicKey::from(&secret);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(share));
        let salt = [share.as_slice(), public.as_bytes()].concat();
        let wrap = hkdf(shared.as_bytes(), &salt, b"age-encryption.org/v1/X25519");
        let file_key = ChaCha20Poly1305::new((&wrap).into())
            .decrypt((&[0u8; 12]).into(), body.as_slice())
            .ok()?;
        let mut check =
            <hmac::Hmac<Sha256> as Mac>::new_from_slice(&hkdf(&file_key, &[], b"header")).ok()?;
        check.update(header.as_bytes());
        check.verify_slice(&mac).ok()?;
        let (nonce, chunks) = payload.split_at(16);
        let key = hkdf(&file_key, nonce, b"payload");
        let mut out = Vec::new();
        let pieces: Vec<_> = chunks.chunks(SPEC_CHUNK + 16).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let mut n = [0u8; 12];
            n[..11].copy_from_slice(&(i as u128).to_be_bytes()[5..16]);
            n[11] = u8::from(i + 1 == pieces.len());
            out.extend(
                ChaCha20Poly1305::new((&key).into())
                    .decrypt((&n).into(), *piece)
                    .ok()?,
            );
        }
        Some(out)
    }

    #[test]
    fn bech32_reads_what_it_writes_and_refuses_a_typo() {
        let recipient = Recipient([9; 32]);
        let text = recipient.encode();
        assert!(text.starts_with("age1") && text.len() == 62, "{text}");
        assert_eq!(Recipient::parse(&text), Ok(recipient.clone()));
        assert_eq!(Recipient::parse(&text.to_ascii_uppercase()), Ok(recipient));
        let mut typo = text.into_bytes();
        typo[10] = if typo[10] == b'q' { b'p' } else { b'q' };
        assert!(Recipient::parse(std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(Recipient::parse("age1").is_err());
        assert!(Recipient::parse("").is_err());
        // An identity is not a recipient.
        let identity = bech32_encode("age-secret-key-", &[1; 32]).to_ascii_uppercase();
        assert!(Recipient::parse(&identity).is_err());
    }

    /// A key pair `age-keygen` 1.1.1 made, and a file its `age -r` sealed:
    /// the identity's public key encodes to the recipient it printed, and
    /// the file opens the way the writer's files are opened.
    #[test]
    fn a_key_and_a_file_of_the_age_tool_read_back() {
        let identity_text =
            "AGE-SECRET-KEY-1FCLXWY9HRGRL6GGMVMEQETJN20DJZ8G2AJNY4D86U5CDMERY5D2SLDN994";
        let (hrp, bytes) = bech32_decode(identity_text).unwrap();
        assert_eq!(hrp, "age-secret-key-");
        let identity: [u8; 32] = bytes.try_into().unwrap();
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(identity));
        assert_eq!(
            Recipient(*public.as_bytes()).encode(),
            "age1hsl95zkclltetgmdcrf09vf306l6xnwp62xjmnvkwlpldyjtnuksud0k8g"
        );
        let file = base64::engine::general_purpose::STANDARD
            .decode("YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBTM0ZxWDd0QjRMY2RtN0dRd1ppQ2VSWmJkQjlaNUt3cnU5VmlJUzlEaldrCm96aFp5WFlZNi92eGxsWTNhNXh5NVg0MmxjS0haeCtGVm96MkYvekVrZlkKLS0tIEZ3MEdCZDRSK1pjcWZXSGdqL0tYRFRCdHRYSS9SZWpGUjJFTGdDMDBTWHMKRJpdPoL3Vu6DtPpNggPB99otaoyCHiQCfj8SjNQN9pWAFhBvugcgV9WNfPKT")
            .unwrap();
        assert_eq!(decrypt(identity, &file).unwrap(), "kaquan 卡券".as_bytes());
    }

    #[test]
    fn bits_regroup_without_a_spare_group_when_they_fit() {
        // 40 bits are eight 5-bit groups exactly: no padding group.
        let groups = convert_bits(&[0xff; 5], 8, 5, true).unwrap();
        assert_eq!(groups, vec![31; 8]);
        assert_eq!(convert_bits(&groups, 5, 8, false).unwrap(), vec![0xff; 5]);
        // 8 bits leave 3 over: one padded group.
        assert_eq!(convert_bits(&[0xff], 8, 5, true).unwrap(), vec![31, 28]);
        // Reading back, a whole group left over, or padding bits that are
        // not zero, is refused.
        assert_eq!(convert_bits(&[0], 5, 8, false), None);
        assert_eq!(convert_bits(&[31, 31], 5, 8, false), None);
        assert_eq!(convert_bits(&[31, 28], 5, 8, false), Some(vec![0xff]));
    }

    #[test]
    fn bech32_takes_its_published_vectors_and_refuses_an_empty_prefix() {
        // BIP-173's valid strings: a checksum alone, in either case.
        assert_eq!(bech32_decode("a12uel5l"), Some(("a".to_owned(), vec![])));
        assert_eq!(bech32_decode("A12UEL5L"), Some(("a".to_owned(), vec![])));
        assert_eq!(bech32_decode("a12uel5"), None, "a checksum cut short");
        assert_eq!(bech32_decode("A12uel5l"), None, "mixed case");
        let no_prefix = bech32_encode("", &[1, 2, 3]);
        assert!(no_prefix.starts_with('1'));
        assert_eq!(bech32_decode(&no_prefix), None);
    }

    #[test]
    fn a_published_recipient_reads() {
        // The recipient of age's own README example.
        let text = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        assert_eq!(Recipient::parse(text).unwrap().encode(), text);
    }

    #[test]
    fn sealed_files_open_with_the_identity_only_and_chunk_at_64_kib() {
        let identity = [5u8; 32];
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(identity));
        let recipient = Recipient(*public.as_bytes());
        for size in [
            0,
            1,
            SPEC_CHUNK - 1,
            SPEC_CHUNK,
            SPEC_CHUNK + 1,
            2 * SPEC_CHUNK,
            3 * SPEC_CHUNK + 7,
        ] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut sealed = Vec::new();
            let n = encrypt(&recipient, &mut plain.as_slice(), &mut sealed).unwrap();
            assert_eq!(n as usize, sealed.len());
            assert_eq!(
                decrypt(identity, &sealed).as_deref(),
                Some(plain.as_slice()),
                "{size}"
            );
            assert_eq!(decrypt([6; 32], &sealed), None, "another key opens nothing");
            let chunks = size.div_ceil(SPEC_CHUNK).max(1);
            let header_len = sealed.len() - 16 - size - 16 * chunks;
            assert!(sealed[..header_len].starts_with(b"age-encryption.org/v1\n-> X25519 "));
        }
    }
}
