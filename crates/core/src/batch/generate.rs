//! The generator that turns a batch's rules into card rows: numbers
//! (sequential or random, skipping taken ones) and passwords, each row
//! carrying only the password's digest and sealed copy.

use super::*;
use rand::Rng;
use std::collections::HashSet;

/// One card to insert. The plaintext password is gone by the time a row
/// exists: only its digest and sealed copy travel to the store.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub serial: i64,
    pub number: String,
    pub secret_digest: [u8; DIGEST_LENGTH],
    pub secret_sealed: Vec<u8>,
}

pub fn generate_password(
    length: usize,
    charset: PasswordCharset,
    rng: &mut impl Rng,
) -> CardPassword {
    let alphabet = charset.alphabet();
    let text: String = (0..length)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect();
    CardPassword::from_generated(text)
}

/// Makes card numbers for a spec, skipping any in `taken` (numbers that
/// already exist for the merchant with this prefix).
pub struct NumberGenerator {
    spec_prefix: String,
    number_length: usize,
    numbering: Numbering,
    next_sequential: u64,
    pad: bool,
    seen: HashSet<u64>,
    taken: HashSet<String>,
}

impl NumberGenerator {
    /// `sequential_after` is the highest numeric part already used with this
    /// prefix and length, so sequential batches continue where the last stopped.
    pub fn new(spec: &BatchSpec, taken: HashSet<String>, sequential_after: u64) -> Self {
        let (next_sequential, pad) = match spec.start_number {
            Some(start) => (start + 1, false),
            None => (sequential_after + 1, true),
        };
        Self {
            spec_prefix: spec.prefix.as_str().to_owned(),
            number_length: spec.number_length,
            numbering: spec.numbering,
            next_sequential,
            pad,
            seen: HashSet::new(),
            taken,
        }
    }

    fn format(&self, digits: u64) -> String {
        if self.pad {
            format!(
                "{}{:0width$}",
                self.spec_prefix,
                digits,
                width = self.number_length
            )
        } else {
            format!("{}{}", self.spec_prefix, digits)
        }
    }

    /// The next free number; `None` when the space is exhausted.
    pub fn next_number(&mut self, rng: &mut impl Rng) -> Option<String> {
        let space = 10u64
            .checked_pow(self.number_length as u32)
            .unwrap_or(u64::MAX);
        loop {
            let digits = match self.numbering {
                Numbering::Sequential => {
                    let d = self.next_sequential;
                    if self.pad && d >= space {
                        return None;
                    }
                    self.next_sequential += 1;
                    d
                }
                Numbering::Random => {
                    let d = rng.gen_range(0..space);
                    if !self.seen.insert(d) {
                        continue;
                    }
                    d
                }
            };
            let number = self.format(digits);
            if self.taken.is_empty() || !self.taken.contains(&number) {
                return Some(number);
            }
        }
    }
}

/// Produces one batch's card rows: number, digest and sealed password.
pub struct CardGenerator {
    numbers: NumberGenerator,
    keys: MerchantKeys,
    password_length: usize,
    password_charset: PasswordCharset,
    next_serial: i64,
    remaining: i64,
}

impl CardGenerator {
    pub fn new(
        spec: &BatchSpec,
        keys: MerchantKeys,
        first_serial: i64,
        numbers: NumberGenerator,
    ) -> Self {
        Self {
            numbers,
            keys,
            password_length: spec.password_length,
            password_charset: spec.password_charset,
            next_serial: first_serial,
            remaining: spec.quantity,
        }
    }

    /// Up to `n` more cards; empty when the batch is complete.
    pub fn next_chunk(&mut self, n: usize) -> Vec<NewCard> {
        let mut rng = rand::thread_rng();
        let n = (n as i64).min(self.remaining).max(0) as usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(number) = self.numbers.next_number(&mut rng) else {
                break;
            };
            let password = generate_password(self.password_length, self.password_charset, &mut rng);
            out.push(NewCard {
                serial: self.next_serial,
                secret_digest: self.keys.secret_digest(&number, password.expose()),
                secret_sealed: self.keys.seal(&number, password.expose()),
                number,
            });
            self.next_serial += 1;
        }
        self.remaining -= out.len() as i64;
        out
    }
}

/// Builds a row for an imported card with the merchant's own number and password.
pub fn imported_card(
    keys: &MerchantKeys,
    serial: i64,
    number: &CardNumber,
    password: &CardPassword,
) -> NewCard {
    NewCard {
        serial,
        number: number.as_str().to_owned(),
        secret_digest: keys.secret_digest(number.as_str(), password.expose()),
        secret_sealed: keys.seal(number.as_str(), password.expose()),
    }
}
