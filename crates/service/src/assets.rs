//! Asset metadata rules shared by every backend: object keys, display names, the stored
//! content type, what may render inline, download ranges and `Content-Disposition`.

use crate::env::Random;

/// Longest display name kept (characters).
pub const MAX_NAME_CHARS: usize = 255;

/// A new object key: 128 random bits as lowercase hex, never derived from user input.
pub fn new_object_key(random: &(impl Random + ?Sized)) -> String {
    random.random_hex(16)
}

/// Whether `key` has the shape [`new_object_key`] produces (checked before any lookup).
pub fn is_object_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Reduces an uploaded file name to a display name: the last path component (so
/// `../../etc/passwd` becomes `passwd`), without control or bidi-override characters,
/// trimmed, at most [`MAX_NAME_CHARS`]; `file` when nothing is left. It is only ever metadata.
pub fn sanitize_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "file".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The type a file is stored and served as: the `type/subtype` of `Content-Type`, lowercase,
/// parameters dropped, parsed by the `mime` crate. Anything it cannot parse (several types
/// joined with commas, stray characters, not ASCII) is `application/octet-stream`, so no
/// header trick can smuggle a second type past [`inline_allowed`].
pub fn normalize_content_type(raw: &str) -> String {
    const FALLBACK: &str = "application/octet-stream";
    let raw = raw.trim();
    if raw.len() > 255 || raw.contains(',') {
        return FALLBACK.to_string();
    }
    match raw.parse::<mime::Mime>() {
        // The essence keeps a `+xml` suffix (`image/svg+xml`), which must decide too.
        Ok(m) => m.essence_str().to_ascii_lowercase(),
        Err(_) => FALLBACK.to_string(),
    }
}

/// Content types a browser may render inline from the backend's origin: images (no SVG: it
/// can carry script), audio, video and PDF. Everything else is served as an attachment. It
/// decides on the normalised type alone ([`normalize_content_type`]).
pub fn inline_allowed(content_type: &str) -> bool {
    let essence = normalize_content_type(content_type);
    matches!(
        essence.as_str(),
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/bmp"
            | "image/x-icon"
            | "image/vnd.microsoft.icon"
            | "application/pdf"
    ) || ((essence.starts_with("audio/") || essence.starts_with("video/"))
        && !essence.contains("xml"))
}

/// One `Range: bytes=a-b | a- | -n` within `size`, as inclusive bounds, so `<video>` can seek.
/// Anything else (several ranges, malformed, unsatisfiable) is `None`: the whole object is
/// served, which RFC 9110 allows.
pub fn parse_range(value: Option<&str>, size: u64) -> Option<(u64, u64)> {
    let spec = value?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            size - 1
        } else {
            b.parse().ok()?
        };
        (start, end.min(size - 1))
    };
    (start <= end && start < size).then_some((start, end))
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987); `kind`
/// is `inline` or `attachment`. Always a valid header value.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .-_()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_and_ranges() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("  .. "), "file");
        assert!(is_object_key(&"a".repeat(32)));
        assert!(!is_object_key(&"A".repeat(32)));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Some((2, 4)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Some((7, 9)));
        assert_eq!(parse_range(Some("bytes=10-"), 10), None);
        assert_eq!(
            disposition("inline", "é a.png"),
            "inline; filename=\"_ a.png\"; filename*=UTF-8''%C3%A9%20a.png"
        );
        assert!(!inline_allowed("image/svg+xml"));
        assert_eq!(normalize_content_type("Image/PNG; q=1"), "image/png");
    }
}
