#![cfg(feature = "smtp")]
//! `SmtpMailer` against a real SMTP server on loopback: a small server in
//! this file speaking STARTTLS or implicit TLS and AUTH PLAIN, with a
//! certificate made for the run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_authkit::mail::{Mail, MailError, MailFacts, MailKind, Mailer, SmtpMailer, Templates};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const USER: &str = "mailer@example.com";
const PASSWORD: &str = "p@ss word:1";
/// The same credentials as URL userinfo.
const USERINFO: &str = "mailer%40example.com:p%40ss%20word%3A1";
const FROM: &str = "Auth <no-reply@example.com>";
/// How long a test waits for something that should happen at once.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain greeting, STARTTLS, then AUTH on the encrypted connection.
    StartTls,
    /// TLS from the first byte.
    ImplicitTls,
    /// No STARTTLS offered; AUTH offered in plain text.
    PlainOnly,
    /// Accepts connections and never says a word.
    Stall,
}

/// A message as the server received it.
#[derive(Debug)]
struct Received {
    user: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

impl Received {
    fn head_and_body(&self) -> (String, &str) {
        let (head, body) = self.data.split_once("\r\n\r\n").expect("a blank line");
        // Unfold continuation lines.
        (head.replace("\r\n ", " ").replace("\r\n\t", " "), body)
    }

    /// The value of the one header called `name`.
    fn header(&self, name: &str) -> String {
        let (head, _) = self.head_and_body();
        let found: Vec<String> = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        assert_eq!(found.len(), 1, "{name} in {head}");
        found[0].clone()
    }

    fn header_names(&self) -> Vec<String> {
        let (head, _) = self.head_and_body();
        head.split("\r\n")
            .map(|l| l.split(':').next().unwrap_or_default().to_ascii_lowercase())
            .collect()
    }
}

struct Server {
    addr: SocketAddr,
    cert_pem: String,
    /// Every command line the server read, in order, across connections.
    commands: Arc<Mutex<Vec<String>>>,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (tx, received) = mpsc::unbounded_channel();
        let conn = Conn {
            commands: commands.clone(),
            tx,
        };
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, conn) = (acceptor.clone(), conn.clone());
                tokio::spawn(async move {
                    // A client that hangs up ends its session; nothing to report.
                    let _ = match mode {
                        Mode::Stall => {
                            let _held = tcp;
                            std::future::pending::<std::io::Result<()>>().await
                        }
                        Mode::StartTls => conn.plain(tcp, acceptor).await,
                        Mode::ImplicitTls => match acceptor.accept(tcp).await {
                            Ok(tls) => conn.session(tls, true).await,
                            Err(e) => Err(e),
                        },
                        Mode::PlainOnly => conn.session(tcp, true).await,
                    };
                });
            }
        });
        Server {
            addr,
            cert_pem: certified.cert.pem(),
            commands,
            received,
        }
    }

    fn url(&self, scheme: &str, userinfo: &str) -> String {
        format!("{scheme}://{userinfo}@{}", self.addr)
    }

    fn mailer(&self, url: &str) -> SmtpMailer {
        SmtpMailer::builder(url, FROM)
            .root_certificate(self.cert_pem.as_bytes())
            .build()
            .unwrap()
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.received.recv())
            .await
            .expect("a message arrives")
            .expect("the server runs")
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Conn {
    commands: Arc<Mutex<Vec<String>>>,
    tx: mpsc::UnboundedSender<Received>,
}

async fn read_line<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> std::io::Result<String> {
    let mut line = String::new();
    if io.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

impl Conn {
    fn saw(&self, line: &str) {
        self.commands.lock().unwrap().push(line.to_owned());
    }

    /// The unencrypted start of a STARTTLS connection.
    async fn plain(&self, tcp: TcpStream, acceptor: TlsAcceptor) -> std::io::Result<()> {
        let mut io = BufReader::new(tcp);
        io.get_mut()
            .write_all(b"220 127.0.0.1 ESMTP test\r\n")
            .await?;
        loop {
            let line = read_line(&mut io).await?;
            self.saw(&line);
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "EHLO" => b"250-127.0.0.1\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
                "STARTTLS" => {
                    io.get_mut()
                        .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                        .await?;
                    let tls = acceptor.accept(io.into_inner()).await?;
                    return self.session(tls, false).await;
                }
                "QUIT" => {
                    io.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => b"530 5.7.0 Must issue a STARTTLS command first\r\n",
            };
            io.get_mut().write_all(answer).await?;
        }
    }

    /// A session that offers AUTH PLAIN and takes messages once signed in.
    async fn session<S>(&self, stream: S, greet: bool) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut io = BufReader::new(stream);
        if greet {
            io.get_mut()
                .write_all(b"220 127.0.0.1 ESMTP test\r\n")
                .await?;
        }
        let mut user = None::<String>;
        let mut mail_from = None::<String>;
        let mut rcpt_to = Vec::new();
        loop {
            let line = read_line(&mut io).await?;
            self.saw(&line);
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            let answer: &[u8] = match verb.to_ascii_uppercase().as_str() {
                "EHLO" => b"250-127.0.0.1\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n",
                "AUTH" => {
                    let initial = arg.strip_prefix("PLAIN ").unwrap_or_default();
                    let decoded = B64.decode(initial).unwrap_or_default();
                    let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                    if parts.len() == 3
                        && parts[1] == USER.as_bytes()
                        && parts[2] == PASSWORD.as_bytes()
                    {
                        user = Some(USER.to_owned());
                        b"235 2.7.0 Authentication successful\r\n"
                    } else {
                        b"535 5.7.8 Authentication credentials invalid\r\n"
                    }
                }
                "MAIL" if user.is_none() => b"530 5.7.0 Authentication required\r\n",
                "MAIL" => {
                    mail_from = Some(angle(arg));
                    b"250 2.1.0 OK\r\n"
                }
                "RCPT" => {
                    rcpt_to.push(angle(arg));
                    b"250 2.1.5 OK\r\n"
                }
                "DATA" if mail_from.is_some() && !rcpt_to.is_empty() => {
                    io.get_mut()
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        if io.read_line(&mut line).await? == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        // Undo dot-stuffing.
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    let _ = self.tx.send(Received {
                        user: user.clone().unwrap_or_default(),
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    });
                    b"250 2.0.0 Queued\r\n"
                }
                "DATA" => b"503 5.5.1 Bad sequence of commands\r\n",
                "RSET" => {
                    mail_from = None;
                    rcpt_to.clear();
                    b"250 2.0.0 OK\r\n"
                }
                "NOOP" => b"250 2.0.0 OK\r\n",
                "QUIT" => {
                    io.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 5.5.2 Command not recognized\r\n",
            };
            io.get_mut().write_all(answer).await?;
        }
    }
}

/// The address in `FROM:<a@b> SIZE=1` or `TO:<a@b>`.
fn angle(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.find('>').unwrap_or(arg.len());
    arg[start..end].to_owned()
}

fn verification(to: &str, name: &str) -> Mail {
    let facts = MailFacts::new(to, name).code("123456", Duration::from_secs(900));
    Templates::default().mail(MailKind::Verification, &facts)
}

async fn send_err(mailer: &SmtpMailer, mail: &Mail) -> MailError {
    tokio::time::timeout(DEADLINE, mailer.send(mail))
        .await
        .expect("the mailer gives up by itself")
        .expect_err("the send fails")
}

#[tokio::test]
async fn starttls_with_auth_delivers_the_message() {
    let mut server = Server::start(Mode::StartTls).await;
    let mailer = server.mailer(&server.url("smtp", USERINFO));
    mailer
        .send(&verification("jo@example.com", "Jo Doe"))
        .await
        .unwrap();

    let got = server.next().await;
    assert_eq!(got.user, USER);
    assert_eq!(got.mail_from, "no-reply@example.com");
    assert_eq!(got.rcpt_to, ["jo@example.com"]);
    assert_eq!(got.header("From"), "Auth <no-reply@example.com>");
    assert_eq!(got.header("To"), "\"Jo Doe\" <jo@example.com>");
    assert_eq!(got.header("Subject"), "Verify your e-mail address");
    assert!(got.header("Content-Type").starts_with("text/plain"));
    let id = got.header("Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
    let (_, body) = got.head_and_body();
    assert!(
        body.contains("your verification code is 123456. It is valid for 15 minutes."),
        "{body}"
    );
    // Credentials went over TLS only: AUTH came after STARTTLS.
    let commands = server.commands();
    let starttls = commands.iter().position(|c| c == "STARTTLS").unwrap();
    let auth = commands.iter().position(|c| c.starts_with("AUTH")).unwrap();
    assert!(starttls < auth, "{commands:?}");
}

#[tokio::test]
async fn implicit_tls_delivers_to_a_unicode_domain() {
    let mut server = Server::start(Mode::ImplicitTls).await;
    let mailer = server.mailer(&server.url("smtps", USERINFO));
    // The server has no SMTPUTF8: the domain must arrive as punycode.
    mailer
        .send(&verification("jo@bücher.example", "Jo"))
        .await
        .unwrap();

    let got = server.next().await;
    assert_eq!(got.user, USER);
    assert_eq!(got.rcpt_to, ["jo@xn--bcher-kva.example"]);
    assert_eq!(got.header("To"), "Jo <jo@xn--bcher-kva.example>");
    assert!(got.head_and_body().1.contains("123456"));
}

#[tokio::test]
async fn a_wrong_password_is_a_mail_error() {
    let mut server = Server::start(Mode::StartTls).await;
    let mailer = server.mailer(&server.url("smtp", "mailer%40example.com:wrong"));
    let e = send_err(&mailer, &verification("jo@example.com", "Jo")).await;
    assert_eq!(e.reason(), "refused by the server");
    assert!(e.to_string().contains("535"), "{e}");
    assert!(server.received.try_recv().is_err());
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[tokio::test]
async fn a_server_without_starttls_gets_no_credentials() {
    let mut server = Server::start(Mode::PlainOnly).await;
    let mailer = server.mailer(&server.url("smtp", USERINFO));
    let e = send_err(&mailer, &verification("jo@example.com", "Jo")).await;
    assert!(server.received.try_recv().is_err(), "{e}");
    let commands = server.commands();
    assert!(
        !commands.iter().any(|c| c.starts_with("AUTH")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let server = Server::start(Mode::Stall).await;
    let mailer = SmtpMailer::builder(&server.url("smtp", USERINFO), FROM)
        .root_certificate(server.cert_pem.as_bytes())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = send_err(&mailer, &verification("jo@example.com", "Jo")).await;
    assert_eq!(e.reason(), "timed out");
}

#[tokio::test]
async fn a_name_or_subject_cannot_add_headers() {
    let mut server = Server::start(Mode::StartTls).await;
    let mailer = server.mailer(&server.url("smtp", USERINFO));
    let evil = "Eve\r\nBcc: victim@example.com\r\n";
    let templates = Templates::default()
        .with(MailKind::Verification, "Hi {name}", "Code {code}")
        .unwrap();
    let facts = MailFacts::new("jo@example.com", evil).code("123456", Duration::from_secs(900));
    let mut mail = templates.mail(MailKind::Verification, &facts);
    mailer.send(&mail).await.unwrap();
    // A hand-made mail whose subject was never rendered.
    mail.subject = format!("Hello{evil}");
    mailer.send(&mail).await.unwrap();

    for _ in 0..2 {
        let got = server.next().await;
        assert_eq!(got.rcpt_to, ["jo@example.com"]);
        let names = got.header_names();
        assert!(!names.contains(&"bcc".to_owned()), "{:?}", got.data);
        assert!(!got.header("To").contains('\r'), "{:?}", got.data);
        assert!(
            got.header("To").ends_with("<jo@example.com>"),
            "{:?}",
            got.data
        );
        let (_, body) = got.head_and_body();
        assert_eq!(body.trim_end(), "Code 123456");
    }
}

#[tokio::test]
async fn a_line_break_in_the_address_is_refused() {
    let server = Server::start(Mode::StartTls).await;
    let mailer = server.mailer(&server.url("smtp", USERINFO));
    let mail = verification("jo@example.com\r\nBcc: victim@example.com", "Jo");
    let e = send_err(&mailer, &mail).await;
    assert_eq!(e.reason(), "invalid recipient address");
    assert!(server.commands().is_empty());
}
