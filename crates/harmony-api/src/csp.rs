//! The Content-Security-Policy of the HTML pages Harmony serves (the web UI and `/docs`): every
//! script, style, image and connection from the origin only, plus the page's own inline
//! `<script>` and `<style>` blocks, allowed by their SHA-256. The hashes are computed from the
//! embedded page itself, so a rebuilt UI needs no edit here; an injected script matches none.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// What every answer that is not a page gets (`lib.rs::protect`): never framed, no plugins.
pub const FOR_DATA: &str =
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

/// The policy for `html`.
pub fn for_page(html: &str) -> String {
    let sources = |tag: &str| {
        let mut list = vec!["'self'".to_owned()];
        list.extend(
            inline_bodies(html, tag)
                .into_iter()
                .map(|body| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(body)))),
        );
        list.join(" ")
    };
    format!(
        "default-src 'self'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; {FOR_DATA}",
        sources("script"),
        sources("style"),
    )
}

/// The text of each `<tag>` element of `html` that has no `src` (an inline block).
fn inline_bodies<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end_of_tag) = after.find('>') else {
            break;
        };
        let attributes = &after[..end_of_tag];
        let body_and_more = &after[end_of_tag + 1..];
        let Some(end) = body_and_more.find(&close) else {
            break;
        };
        if !attributes.contains("src=") {
            out.push(&body_and_more[..end]);
        }
        rest = &body_and_more[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_blocks_are_hashed_and_external_ones_are_not() {
        let page = "<head><script>a()</script><script type=\"module\" src=\"/x.js\"></script>\
                    <style>b{}</style></head><body><script>\nc()\n</script></body>";
        assert_eq!(inline_bodies(page, "script"), ["a()", "\nc()\n"]);
        assert_eq!(inline_bodies(page, "style"), ["b{}"]);
        let csp = for_page(page);
        let hash = |s: &str| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(s)));
        assert!(csp.contains(&format!(
            "script-src 'self' {} {};",
            hash("a()"),
            hash("\nc()\n")
        )));
        assert!(csp.contains(&format!("style-src 'self' {};", hash("b{}"))));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe"));
    }
}
