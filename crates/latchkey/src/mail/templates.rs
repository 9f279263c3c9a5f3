//! The messages Latchkey sends, as plain text and HTML, built into the binary. Every value put
//! into the HTML is escaped; the plain text carries the same words and link.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::format_duration;

/// A message ready for the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Escapes text for HTML element content and double-quoted attribute values.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link into the application: `{public_url}/{page}#token={token}`. The token rides in the
/// fragment, which browsers never send to a server (no access log or `Referer` holds it); the
/// page reads it and posts it to the API.
#[must_use]
pub fn link(public_url: &str, page: &str, token: &str) -> String {
    format!("{public_url}/{page}#token={token}")
}

fn lifetime(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    match secs {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        _ => format_duration(ttl),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn html_page(username: &str, lines: &[&str], action: &str, url: &str, footer: &str) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n",
    );
    let _ = writeln!(html, "<p>Hello {},</p>", escape_html(username));
    for line in lines {
        let _ = writeln!(html, "<p>{}</p>", escape_html(line));
    }
    let _ = writeln!(
        html,
        "<p><a href=\"{url}\">{action}</a></p>\n<p>Or paste this link into your browser:<br>{url}</p>",
        url = escape_html(url),
        action = escape_html(action),
    );
    let _ = writeln!(html, "<p>{}</p>\n</body></html>", escape_html(footer));
    html
}

fn text_page(username: &str, lines: &[&str], url: &str, footer: &str) -> String {
    let mut text = format!("Hello {username},\n\n");
    for line in lines {
        text.push_str(line);
        text.push_str("\n\n");
    }
    let _ = write!(text, "{url}\n\n{footer}\n");
    text
}

/// The message that asks the user to confirm their address.
#[must_use]
pub fn verification(username: &str, url: &str, ttl: Duration) -> Rendered {
    let valid = format!("The link works once and expires in {}.", lifetime(ttl));
    let lines = [
        "Please confirm that this is your email address by opening the link below.",
        valid.as_str(),
    ];
    let footer = "If you did not create an account, you can ignore this message.";
    Rendered {
        subject: "Confirm your email address".to_owned(),
        text: text_page(username, &lines, url, footer),
        html: html_page(username, &lines, "Confirm my email address", url, footer),
    }
}

/// The message that lets the user choose a new password.
#[must_use]
pub fn password_reset(username: &str, url: &str, ttl: Duration) -> Rendered {
    let valid = format!(
        "The link works once and expires in {}. Setting a new password signs you out everywhere.",
        lifetime(ttl)
    );
    let lines = [
        "Someone (hopefully you) asked to reset the password of your account. Open the link below to choose a new one.",
        valid.as_str(),
    ];
    let footer = "If you did not ask for this, ignore this message: your password stays as it is.";
    Rendered {
        subject: "Reset your password".to_owned(),
        text: text_page(username, &lines, url, footer),
        html: html_page(username, &lines, "Choose a new password", url, footer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_every_value_and_text_keeps_the_link() {
        let url = link("https://app.example", "verify-email", "abc-_123");
        assert_eq!(url, "https://app.example/verify-email#token=abc-_123");
        let m = verification(
            "<script>alert('x')</script>&",
            &url,
            Duration::from_secs(86_400),
        );
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(
            m.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;")
        );
        assert!(
            m.html
                .contains("href=\"https://app.example/verify-email#token=abc-_123\"")
        );
        assert!(m.text.contains(&url));
        assert!(m.text.contains("expires in 1 day"));
        let r = password_reset("bob", &url, Duration::from_secs(1_800));
        assert!(r.text.contains("expires in 30 minutes"), "{}", r.text);
    }
}
