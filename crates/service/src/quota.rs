//! The quota rule (seed 000 "Quotas"): `extra` more bytes fit when settled usage plus open
//! reservations plus `extra` stays within the limit.

use monodit_core::{Error, ErrorCode};

/// Fails with QUOTA_EXCEEDED unless `extra` more bytes fit: `used + reserved + extra <=
/// limit`, in checked arithmetic, so a sum past `u64::MAX` is over any limit (it never
/// saturates into "fits"). Zero extra bytes always fit (a write that does not grow).
pub fn check(used: u64, reserved: u64, extra: u64, limit: u64) -> Result<(), Error> {
    if extra == 0 {
        return Ok(());
    }
    let total = used
        .checked_add(reserved)
        .and_then(|s| s.checked_add(extra));
    if matches!(total, Some(t) if t <= limit) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::QuotaExceeded,
        "this write would exceed the storage quota",
    )
    .with_detail(serde_json::json!({
        "usedBytes": used,
        "reservedBytes": reserved,
        "requestedBytes": extra,
        "limitBytes": limit,
    })))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn exactly_the_limit_fits_and_one_more_byte_does_not() {
        assert!(check(90, 0, 10, 100).is_ok());
        assert!(check(90, 0, 11, 100).is_err());
        assert!(check(85, 5, 10, 100).is_ok());
        assert!(check(85, 5, 11, 100).is_err());
        assert!(check(90, 5, 10, 100).is_err());
    }

    #[test]
    fn zero_extra_always_fits_even_past_the_limit() {
        assert!(check(100, 0, 0, 100).is_ok());
        assert!(check(500, 7, 0, 100).is_ok());
    }

    #[test]
    fn sums_past_u64_max_never_fit() {
        // With saturating addition these would be u64::MAX <= u64::MAX: "fits".
        assert!(check(u64::MAX, 0, 1, u64::MAX).is_err());
        assert!(check(u64::MAX - 1, 1, 1, u64::MAX).is_err());
        assert!(check(1, u64::MAX, 1, u64::MAX).is_err());
        assert!(check(0, 0, u64::MAX, u64::MAX).is_ok());
        assert!(check(u64::MAX, 0, 1, 100).is_err());
    }

    #[test]
    fn the_error_is_coded_and_carries_the_numbers() {
        let e = check(95, 3, 10, 100).unwrap_err();
        assert_eq!(e.code.as_str(), "QUOTA_EXCEEDED");
        let d = e.detail.unwrap();
        assert_eq!(d["usedBytes"], 95);
        assert_eq!(d["reservedBytes"], 3);
        assert_eq!(d["requestedBytes"], 10);
        assert_eq!(d["limitBytes"], 100);
    }
}
