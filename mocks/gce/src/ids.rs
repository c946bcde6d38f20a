//! Server-generated values: numeric ids, fingerprints, operation names and timestamps.
//!
//! Everything random comes from one seeded generator, so a run with the same seed and the same
//! request sequence produces the same ids (timestamps aside).

/// The label fingerprint the real API reports for an empty label set.
pub(crate) const EMPTY_LABEL_FINGERPRINT: &str = "42WmSpB8rSM=";

/// SplitMix64: tiny, fast, and good enough for ids and fault probabilities.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A 19-digit id, like the real ones (they are uint64 rendered as decimal strings).
    pub(crate) fn id(&mut self) -> u64 {
        1_000_000_000_000_000_000 + self.next_u64() % 8_000_000_000_000_000_000
    }

    /// 8 random bytes, base64: the shape of every real fingerprint.
    pub(crate) fn fingerprint(&mut self) -> String {
        base64(&self.next_u64().to_be_bytes())
    }

    /// `operation-<epochMillis>-<hex>-<hex>-<hex>`, the real naming pattern.
    pub(crate) fn operation_name(&mut self) -> String {
        let millis = jiff::Timestamp::now().as_millisecond();
        let a = self.next_u64() & 0x000F_FFFF_FFFF_FFFF;
        let b = self.next_u64();
        format!(
            "operation-{millis}-{a:013x}-{:08x}-{:08x}",
            b >> 32,
            b & 0xFFFF_FFFF
        )
    }
}

/// A 19-digit id that depends on `text` only (FNV-1a), for resources every read must show with
/// the same id without storing them (zones, the networks a project starts with).
pub(crate) fn stable_id(text: &str) -> u64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1_000_000_000_000_000_000 + h % 8_000_000_000_000_000_000
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Now, as RFC 3339 with milliseconds and an offset, like `2019-05-30T09:13:38.258-07:00`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

/// A timestamp in the API's RFC 3339 form (UTC offset spelled `+00:00`).
pub(crate) fn rfc3339(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn generated_values_have_the_real_shapes() {
        let mut rng = Rng::new(7);
        assert_eq!(rng.fingerprint().len(), 12);
        assert_eq!(rng.id().to_string().len(), 19);
        let op = rng.operation_name();
        assert!(op.starts_with("operation-"), "{op}");
        assert_eq!(op.split('-').count(), 5, "{op}");
        let ts = now_rfc3339();
        assert!(ts.ends_with("+00:00") && ts.contains('.'), "{ts}");
    }
}
