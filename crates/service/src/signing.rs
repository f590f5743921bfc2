//! Signed download URLs: `sig = HMAC-SHA256(secret, "{key}\n{exp}")`, hex, with an expiry
//! rounded up to the hour so repeated listings hand out the same URL (browsers can cache the
//! image) while it still expires.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// Granularity of URL expiries, seconds.
pub const EXPIRY_ROUNDING_SECS: u64 = 3600;

/// Signs and checks download URLs with one secret ([`crate::Secret::Url`]).
#[derive(Clone)]
pub struct Signer {
    secret: Arc<Vec<u8>>,
}

/// Why a signed URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature does not match (tampered key, expiry or signature).
    Invalid,
    /// The URL's expiry has passed.
    Expired,
}

/// The expiry of a URL signed at `now_secs` that must live at least `ttl_secs`: their sum
/// rounded up to the hour (saturating, so a huge TTL means "never" rather than a panic).
pub fn url_expiry(now_secs: u64, ttl_secs: u64) -> u64 {
    let at_least = now_secs.saturating_add(ttl_secs);
    at_least
        .div_ceil(EXPIRY_ROUNDING_SECS)
        .saturating_mul(EXPIRY_ROUNDING_SECS)
}

impl Signer {
    /// A signer with this secret (the native server keeps it in its database, so URLs
    /// survive restarts).
    pub fn new(secret: Vec<u8>) -> Self {
        Signer {
            secret: Arc::new(secret),
        }
    }

    fn mac(&self, key: &str, exp: u64) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The hex signature for `key` valid until `exp` (Unix seconds).
    pub fn sign(&self, key: &str, exp: u64) -> String {
        hex::encode(self.mac(key, exp).finalize().into_bytes())
    }

    /// Checks a signature in constant time, then the expiry (`exp == now_secs` still passes).
    pub fn verify(
        &self,
        key: &str,
        exp: u64,
        sig: &str,
        now_secs: u64,
    ) -> Result<(), SignatureError> {
        let raw = hex::decode(sig).map_err(|_| SignatureError::Invalid)?;
        self.mac(key, exp)
            .verify_slice(&raw)
            .map_err(|_| SignatureError::Invalid)?;
        if exp < now_secs {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_and_expiry() {
        let s = Signer::new(b"secret".to_vec());
        let sig = s.sign("abc", 100);
        assert_eq!(sig.len(), 64);
        assert_eq!(s.verify("abc", 100, &sig, 50), Ok(()));
        assert_eq!(s.verify("abd", 100, &sig, 50), Err(SignatureError::Invalid));
        assert_eq!(s.verify("abc", 101, &sig, 50), Err(SignatureError::Invalid));
        assert_eq!(s.verify("abc", 100, "zz", 50), Err(SignatureError::Invalid));
        assert_eq!(
            s.verify("abc", 100, &sig[..62], 50),
            Err(SignatureError::Invalid)
        );
        let other = Signer::new(b"another".to_vec());
        assert_eq!(
            other.verify("abc", 100, &sig, 50),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_url_is_valid_through_its_expiry_second_and_not_after() {
        let s = Signer::new(b"secret".to_vec());
        let sig = s.sign("abc", 100);
        assert_eq!(s.verify("abc", 100, &sig, 100), Ok(()));
        assert_eq!(
            s.verify("abc", 100, &sig, 101),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // HMAC-SHA256("secret", "abc\n100"), computed independently.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
        mac.update(b"abc\n100");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(Signer::new(b"secret".to_vec()).sign("abc", 100), expected);
    }

    #[test]
    fn expiries_round_up_to_the_hour() {
        assert_eq!(url_expiry(0, 0), 0);
        assert_eq!(url_expiry(3600, 0), 3600, "an exact hour stays");
        assert_eq!(url_expiry(3600, 1), 7200);
        assert_eq!(url_expiry(3599, 1), 3600);
        assert_eq!(url_expiry(1, 24 * 3600), 25 * 3600);
        // Two listings within the same hour get the same expiry.
        assert_eq!(url_expiry(7201, 86_400), url_expiry(10_799, 86_400));
        assert!(url_expiry(u64::MAX - 5, 10) >= u64::MAX - 3600);
    }
}
