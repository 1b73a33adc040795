//! [`SmtpMailer`]: delivery over SMTP with `lettre`, TLS by rustls.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use url::{Host, Url};

use super::{Mail, MailError, Mailer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an [`SmtpMailer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// The URL does not parse, or lettre refuses it.
    #[error("invalid SMTP URL: {0}")]
    Url(#[source] BoxError),
    /// The scheme is neither `smtp` nor `smtps`.
    #[error("the SMTP URL's scheme must be smtp or smtps")]
    Scheme,
    /// `tls=` is something else than `required` or (for `smtp://`) `none`.
    #[error("the SMTP URL's tls parameter must be required or none")]
    TlsMode,
    /// `tls=none` for a host other than `localhost`, `127.0.0.0/8` or `::1`.
    #[error("tls=none is only allowed for a loopback host")]
    PlaintextNotLoopback,
    /// The sender is not a mailbox like `Auth <no-reply@example.com>`.
    #[error("invalid sender mailbox: {0}")]
    From(#[source] BoxError),
    /// An extra root certificate is not PEM, or TLS could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(#[source] BoxError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    StartTls,
    Implicit,
    Plaintext,
}

/// Sends mail through an SMTP server, every message on a new connection,
/// the whole exchange bounded by a timeout.
///
/// The server comes as a URL:
///
/// | URL | connection |
/// |---|---|
/// | `smtp://host` (port 587) | STARTTLS, required |
/// | `smtps://host` (port 465) | implicit TLS |
/// | `smtp://localhost:25?tls=none` | plain text; loopback hosts only, for development |
///
/// Credentials go in the userinfo, percent-encoded
/// (`smtp://user%40example.com:p%40ss@smtp.example.com`). A path names the
/// client in `EHLO` (`smtp://host/mail.example.com`); the default is the
/// machine's hostname. Servers are verified against the system's roots and
/// any [`root_certificate`](SmtpMailerBuilder::root_certificate) added.
///
/// ```no_run
/// use axum_authkit::mail::SmtpMailer;
///
/// # fn demo() -> Result<(), axum_authkit::mail::SmtpConfigError> {
/// let mailer = SmtpMailer::from_url(
///     "smtp://apikey:secret@smtp.example.com:587",
///     "Example <no-reply@example.com>",
/// )?;
/// # let _ = mailer; Ok(()) }
/// ```
///
/// A recipient whose domain is not ASCII (`jo@bücher.example`) is sent to
/// its punycode form (`jo@xn--bcher-kva.example`).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`SmtpMailer`] before it is built; from
/// [`SmtpMailer::builder`].
#[derive(Clone)]
pub struct SmtpMailerBuilder {
    url: String,
    from: String,
    roots: Vec<Vec<u8>>,
    timeout: Duration,
}

impl fmt::Debug for SmtpMailerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("SmtpMailerBuilder")
            .field("from", &self.from)
            .field("roots", &self.roots.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// How long one message may take, connection included, unless
    /// [`SmtpMailerBuilder::timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A mailer for the server at `url` sending as `from` (a mailbox such as
    /// `Auth <no-reply@example.com>`), with the default settings.
    pub fn from_url(url: &str, from: &str) -> Result<Self, SmtpConfigError> {
        Self::builder(url, from).build()
    }

    /// Like [`from_url`](Self::from_url), with more settings before
    /// [`build`](SmtpMailerBuilder::build).
    pub fn builder(url: &str, from: &str) -> SmtpMailerBuilder {
        SmtpMailerBuilder {
            url: url.to_owned(),
            from: from.to_owned(),
            roots: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to =
            ascii_domain(&mail.to).map_err(|e| MailError::new("invalid recipient address", e))?;
        // lettre panics on CR or LF in a display name; other characters it
        // quotes or encodes (RFC 2047), as it does the whole subject, so
        // neither can start a header of its own.
        let name: String = mail
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let name = Some(name.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let id = format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain());
        Message::builder()
            .message_id(Some(id))
            .from(self.from.clone())
            .to(Mailbox::new(name, to))
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| MailError::new("could not build the message", e))
    }
}

impl SmtpMailerBuilder {
    /// Also trusts the CA certificates in `pem` (a private CA, or a test
    /// server's own certificate). Checked by [`build`](Self::build).
    pub fn root_certificate(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// How long one message may take, from connecting to the server's last
    /// answer (default [`SmtpMailer::DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The mailer, or why these settings cannot work.
    pub fn build(self) -> Result<SmtpMailer, SmtpConfigError> {
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| SmtpConfigError::From(Box::new(e)))?;
        let from = Mailbox::new(
            from.name,
            ascii_domain(from.email.as_ref()).map_err(SmtpConfigError::From)?,
        );

        let mut url = Url::parse(&self.url).map_err(|e| SmtpConfigError::Url(Box::new(e)))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("required")) => Security::StartTls,
            ("smtp", Some("none")) => Security::Plaintext,
            ("smtps", None | Some("required")) => Security::Implicit,
            ("smtp" | "smtps", Some(_)) => return Err(SmtpConfigError::TlsMode),
            _ => return Err(SmtpConfigError::Scheme),
        };
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_owned(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(SmtpConfigError::Url("no host".into())),
        };
        if security == Security::Plaintext && !is_loopback(url.host()) {
            return Err(SmtpConfigError::PlaintextNotLoopback);
        }

        // lettre parses the rest (host, port, percent-decoded credentials,
        // EHLO name); it is handed a plain `smtp://` URL with the port made
        // explicit, and TLS is set below, with the extra roots.
        if url.port().is_none() {
            let port = match security {
                Security::StartTls => SUBMISSION_PORT,
                Security::Implicit => SUBMISSIONS_PORT,
                Security::Plaintext => SMTP_PORT,
            };
            url.set_port(Some(port))
                .map_err(|()| SmtpConfigError::Url("cannot have a port".into()))?;
        }
        let rest: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "tls")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !rest.is_empty() {
            url.query_pairs_mut().extend_pairs(rest);
        }
        let plain = format!("smtp{}", &url[url::Position::AfterScheme..]);
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&plain)
            .map_err(|e| SmtpConfigError::Url(Box::new(e)))?;

        if security != Security::Plaintext {
            let mut params = TlsParameters::builder(host);
            for pem in &self.roots {
                // lettre's `Certificate::from_pem` accepts a PEM without any.
                let mut found = false;
                for der in CertificateDer::pem_slice_iter(pem) {
                    let der = der.map_err(|e| SmtpConfigError::Tls(Box::new(e)))?;
                    let cert = Certificate::from_der(der.to_vec())
                        .map_err(|e| SmtpConfigError::Tls(Box::new(e)))?;
                    params = params.add_root_certificate(cert);
                    found = true;
                }
                if !found {
                    return Err(SmtpConfigError::Tls("no certificate in the PEM".into()));
                }
            }
            let params = params
                .build_rustls()
                .map_err(|e| SmtpConfigError::Tls(Box::new(e)))?;
            transport = transport.tls(match security {
                Security::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }

        Ok(SmtpMailer {
            transport: transport.build(),
            from,
            timeout: self.timeout,
        })
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        // An `smtp:` URL's IPv4 address is an opaque host to `url`.
        Some(Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|a| a.is_loopback())
        }
        Some(Host::Ipv4(a)) => a.is_loopback(),
        Some(Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// `address` with its domain in ASCII (punycode), so that it can be sent to
/// servers without SMTPUTF8. lettre checks both parts.
fn ascii_domain(address: &str) -> Result<Address, BoxError> {
    let (user, domain) = address.rsplit_once('@').ok_or("the address has no @")?;
    let domain = if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii(domain)?
    };
    Ok(Address::new(user, domain)?)
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(elapsed) => Err(MailError::new("timed out", elapsed)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(MailError::new(
                if e.is_permanent() {
                    "refused by the server"
                } else if e.is_transient() {
                    "refused by the server for now"
                } else if e.is_tls() {
                    "TLS failed"
                } else {
                    "SMTP exchange failed"
                },
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_domains_become_punycode() {
        let a = ascii_domain("jo@bücher.example").unwrap();
        assert_eq!(a.to_string(), "jo@xn--bcher-kva.example");
        let a = ascii_domain("Jo.Doe@Example.COM").unwrap();
        assert_eq!(a.to_string(), "Jo.Doe@Example.COM");
        for bad in ["no-at-sign", "jo@exa mple.com", "jo\r\n@example.com", "jo@"] {
            assert!(ascii_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_choose_tls() {
        let ok = |url: &str| SmtpMailer::from_url(url, "Auth <no-reply@example.com>");
        for url in [
            "smtp://mail.example.com",
            "smtp://u:p@mail.example.com:2525?tls=required",
            "smtps://mail.example.com",
            "smtp://127.0.0.1:2525?tls=none",
            "smtp://localhost?tls=none",
            "smtp://[::1]:25?tls=none",
        ] {
            assert!(ok(url).is_ok(), "{url}: {:?}", ok(url).err());
        }
        assert!(matches!(
            ok("smtp://mail.example.com?tls=none"),
            Err(SmtpConfigError::PlaintextNotLoopback)
        ));
        assert!(matches!(
            ok("smtp://mail.example.com?tls=opportunistic"),
            Err(SmtpConfigError::TlsMode)
        ));
        assert!(matches!(
            ok("smtps://localhost?tls=none"),
            Err(SmtpConfigError::TlsMode)
        ));
        assert!(matches!(
            ok("http://mail.example.com"),
            Err(SmtpConfigError::Scheme)
        ));
        assert!(matches!(ok("not a url"), Err(SmtpConfigError::Url(_))));
    }

    #[test]
    fn the_sender_must_be_a_mailbox() {
        for bad in [
            "",
            "no-reply",
            "Auth <no-reply@>",
            "a@b.example\r\nBcc: x@y.example",
        ] {
            assert!(
                matches!(
                    SmtpMailer::from_url("smtp://mail.example.com", bad),
                    Err(SmtpConfigError::From(_))
                ),
                "{bad:?}"
            );
        }
        let m = SmtpMailer::from_url("smtp://mail.example.com", "Auth <no-reply@bücher.example>")
            .unwrap();
        assert_eq!(m.from.email.to_string(), "no-reply@xn--bcher-kva.example");
    }

    #[test]
    fn a_bad_root_certificate_is_refused() {
        let bad: [&[u8]; 2] = [
            b"not a certificate",
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ];
        for pem in bad {
            let built = SmtpMailer::builder("smtp://mail.example.com", "a@example.com")
                .root_certificate(pem)
                .build();
            assert!(matches!(built, Err(SmtpConfigError::Tls(_))), "{built:?}");
        }
    }

    #[test]
    fn debug_hides_the_url() {
        let b = SmtpMailer::builder("smtp://u:hunter2@mail.example.com", "a@example.com");
        assert!(!format!("{b:?}").contains("hunter2"));
        let m = b.build().unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
