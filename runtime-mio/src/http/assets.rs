//! The web chat page's static files, embedded in the binary at build time
//! (`web/`: plain HTML, CSS and JS, no build step) and served at `/`.
//!
//! Caching: every file has a strong `ETag` (a hash of its bytes, computed at
//! compile time) and `Cache-Control: no-cache`, so a browser revalidates on
//! each load and gets `304 Not Modified` while the binary is the same, and
//! never runs an old script against a newer node. The page gets a
//! Content-Security-Policy that allows only its own scripts and styles and
//! WebSocket connections (to this node and, on failover, the others).

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// Quoted, as in the `ETag` header.
    pub etag: String,
    /// Extra headers for this file (the page's security policy).
    pub headers: &'static [&'static str],
}

const INDEX: &[u8] = include_bytes!("web/index.html");
const APP: &[u8] = include_bytes!("web/app.js");
const STYLE: &[u8] = include_bytes!("web/style.css");
const ICON: &[u8] = include_bytes!("web/icon.svg");

/// What the page may load and connect to: its own files, and `/ws` on any
/// host (the other nodes' addresses are only known at run time).
const PAGE_HEADERS: &[&str] = &[
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'",
    "X-Content-Type-Options: nosniff",
    "Referrer-Policy: no-referrer",
];
const FILE_HEADERS: &[&str] = &["X-Content-Type-Options: nosniff"];

/// FNV-1a, 64 bits: enough to tell two builds' files apart.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The file served at `path`, if any.
pub(crate) fn find(path: &str) -> Option<Asset> {
    let (content_type, body, headers): (&str, &[u8], &[&str]) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX, PAGE_HEADERS),
        "/app.js" => ("text/javascript; charset=utf-8", APP, FILE_HEADERS),
        "/style.css" => ("text/css; charset=utf-8", STYLE, FILE_HEADERS),
        "/icon.svg" => ("image/svg+xml", ICON, FILE_HEADERS),
        _ => return None,
    };
    Some(Asset {
        content_type,
        body,
        etag: format!("\"{:016x}\"", fnv1a(body)),
        headers,
    })
}

/// Whether an `If-None-Match` header value names `etag` (a list, or `*`;
/// weak validators compare equal, RFC 9110 §13.1.2).
pub(crate) fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_types() {
        let page = find("/").unwrap();
        assert!(page.content_type.starts_with("text/html"));
        assert!(std::str::from_utf8(page.body).unwrap().contains("app.js"));
        assert!(find("/app.js")
            .unwrap()
            .content_type
            .starts_with("text/javascript"));
        assert!(find("/style.css")
            .unwrap()
            .content_type
            .starts_with("text/css"));
        assert!(find("/../Cargo.toml").is_none() && find("/app.js/").is_none());
        assert_ne!(
            find("/app.js").unwrap().etag,
            find("/style.css").unwrap().etag
        );
    }

    #[test]
    fn if_none_match() {
        let tag = find("/").unwrap().etag;
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"x\"", &tag));
    }
}
