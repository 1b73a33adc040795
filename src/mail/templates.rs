//! Plain-text templates: a subject and a body per [`MailKind`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Mail, MailKind};

/// The facts a message is rendered from.
///
/// `email` is always the recipient's address; for an e-mail change,
/// [`new_email`](Self::new_email) is the address being changed to (the code
/// goes to the new address, the notice to the old one).
#[derive(Clone, Copy, Debug)]
pub struct MailFacts<'a> {
    email: &'a str,
    name: &'a str,
    code: Option<&'a str>,
    minutes: u64,
    new_email: Option<&'a str>,
}

impl<'a> MailFacts<'a> {
    /// A message to `email`, whose owner is called `name`.
    pub fn new(email: &'a str, name: &'a str) -> Self {
        MailFacts {
            email,
            name,
            code: None,
            minutes: 0,
            new_email: None,
        }
    }

    /// The code to send and how long it is valid (`{minutes}`, rounded up).
    /// Ignored for the notice kinds, which never carry a code.
    pub fn code(mut self, code: &'a str, valid_for: Duration) -> Self {
        self.code = Some(code);
        self.minutes = valid_for.as_secs().div_ceil(60);
        self
    }

    /// The address the account's e-mail is being changed to.
    pub fn new_email(mut self, new_email: &'a str) -> Self {
        self.new_email = Some(new_email);
        self
    }

    /// Appends the value of `placeholder` (without braces) to `out`; false
    /// when it is not a placeholder `kind` knows.
    fn write(&self, kind: MailKind, placeholder: &str, out: &mut String) -> bool {
        if !kind.placeholders().contains(&placeholder) {
            return false;
        }
        match placeholder {
            "name" => out.push_str(self.name),
            "email" => out.push_str(self.email),
            "code" => out.push_str(self.code.unwrap_or_default()),
            "minutes" => {
                let _ = write!(out, "{}", self.minutes);
            }
            "new_email" => out.push_str(self.new_email.unwrap_or_default()),
            _ => return false,
        }
        true
    }
}

impl MailKind {
    /// The placeholders this kind's templates may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            MailKind::Verification | MailKind::PasswordReset => {
                &["name", "email", "code", "minutes"]
            }
            MailKind::EmailChangeCode => &["name", "email", "code", "minutes", "new_email"],
            MailKind::EmailChangeNotice => &["name", "email", "new_email"],
            MailKind::PasswordChanged => &["name", "email"],
        }
    }
}

/// Why [`Templates::with`] refused a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template names a placeholder the kind does not have (`{code}` in
    /// a notice, or a misspelling).
    #[error("the {kind:?} template uses {{{placeholder}}}, which it does not have")]
    UnknownPlaceholder {
        /// The kind whose template was refused.
        kind: MailKind,
        /// The placeholder's name, without braces.
        placeholder: String,
    },
    /// A kind that sends a code has a body without `{code}`.
    #[error("the {kind:?} body must contain {{code}}")]
    MissingCode {
        /// The kind whose template was refused.
        kind: MailKind,
    },
}

#[derive(Clone, Debug)]
struct Template {
    subject: Cow<'static, str>,
    body: Cow<'static, str>,
}

impl Template {
    const fn new(subject: &'static str, body: &'static str) -> Self {
        Template {
            subject: Cow::Borrowed(subject),
            body: Cow::Borrowed(body),
        }
    }
}

/// A subject and a plain-text body for every [`MailKind`].
///
/// Placeholders are `{name}`, `{email}`, `{code}`, `{minutes}` and
/// `{new_email}`, as far as the kind has them ([`MailKind::placeholders`]).
/// Rendering is one pass over the template: a value that itself contains
/// `{code}` stays literal text. Any other text in braces is kept as written.
///
/// ```
/// use axum_authkit::mail::{MailFacts, MailKind, Templates};
/// use std::time::Duration;
///
/// let templates = Templates::default().with(
///     MailKind::Verification,
///     "Your Example code",
///     "Hi {name}, your code is {code} ({minutes} minutes).",
/// )?;
/// let facts = MailFacts::new("jo@example.com", "Jo").code("123456", Duration::from_secs(900));
/// let mail = templates.mail(MailKind::Verification, &facts);
/// assert_eq!(mail.text, "Hi Jo, your code is 123456 (15 minutes).");
/// # Ok::<(), axum_authkit::mail::TemplateError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Templates {
    by_kind: [Template; 5],
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            by_kind: [
                Template::new(
                    "Verify your e-mail address",
                    "Hello {name},\n\n\
                     your verification code is {code}. It is valid for {minutes} minutes.\n\n\
                     If you did not sign up with {email}, you can ignore this message.\n",
                ),
                Template::new(
                    "Your password reset code",
                    "Hello {name},\n\n\
                     your password reset code is {code}. It is valid for {minutes} minutes.\n\n\
                     If you did not ask to reset the password of {email}, you can ignore \
                     this message; your password stays as it is.\n",
                ),
                Template::new(
                    "Confirm your new e-mail address",
                    "Hello {name},\n\n\
                     to change your account's e-mail address to {new_email}, enter the code \
                     {code}. It is valid for {minutes} minutes.\n\n\
                     If you did not ask for this, you can ignore this message.\n",
                ),
                Template::new(
                    "Your e-mail address is being changed",
                    "Hello {name},\n\n\
                     the e-mail address of your account is being changed from {email} to \
                     {new_email}.\n\n\
                     If you did not ask for this, change your password now.\n",
                ),
                Template::new(
                    "Your password was changed",
                    "Hello {name},\n\n\
                     the password of your account {email} was just changed.\n\n\
                     If you did not do this, reset your password now.\n",
                ),
            ],
        }
    }
}

fn index(kind: MailKind) -> usize {
    match kind {
        MailKind::Verification => 0,
        MailKind::PasswordReset => 1,
        MailKind::EmailChangeCode => 2,
        MailKind::EmailChangeNotice => 3,
        MailKind::PasswordChanged => 4,
    }
}

/// A piece of a template.
enum Piece<'t> {
    Text(&'t str),
    /// `{name}` with `name` of lowercase letters and `_`.
    Placeholder(&'t str),
}

/// Calls `each` with the pieces of `template`, in order.
fn scan<'t>(template: &'t str, mut each: impl FnMut(Piece<'t>)) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        each(Piece::Text(&rest[..open]));
        let after = &rest[open + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if len > 0 && after[len..].starts_with('}') {
            each(Piece::Placeholder(&after[..len]));
            rest = &after[len + 1..];
        } else {
            each(Piece::Text("{"));
            rest = after;
        }
    }
    each(Piece::Text(rest));
}

impl Templates {
    /// Replaces `kind`'s subject and body. Refuses a placeholder the kind
    /// does not have (so a notice can never show a code) and a code kind's
    /// body without `{code}`.
    pub fn with(
        mut self,
        kind: MailKind,
        subject: impl Into<Cow<'static, str>>,
        body: impl Into<Cow<'static, str>>,
    ) -> Result<Self, TemplateError> {
        let (subject, body) = (subject.into(), body.into());
        let mut unknown = None;
        let mut has_code = false;
        for (part, is_body) in [(&subject, false), (&body, true)] {
            scan(part, |piece| {
                if let Piece::Placeholder(name) = piece {
                    if !kind.placeholders().contains(&name) {
                        unknown.get_or_insert(name.to_owned());
                    }
                    has_code |= is_body && name == "code";
                }
            });
        }
        if let Some(placeholder) = unknown {
            return Err(TemplateError::UnknownPlaceholder { kind, placeholder });
        }
        if kind.has_code() && !has_code {
            return Err(TemplateError::MissingCode { kind });
        }
        self.by_kind[index(kind)] = Template { subject, body };
        Ok(self)
    }

    /// The subject and body of `kind` for `facts`. The subject is one line:
    /// control characters (a name's CR/LF) become spaces.
    pub fn render(&self, kind: MailKind, facts: &MailFacts<'_>) -> (String, String) {
        let template = &self.by_kind[index(kind)];
        let fill = |template: &str| {
            let mut out = String::with_capacity(template.len() + 64);
            scan(template, |piece| match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Placeholder(name) => {
                    if !facts.write(kind, name, &mut out) {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
            });
            out
        };
        let subject = fill(&template.subject)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        (subject, fill(&template.body))
    }

    /// A [`Mail`] of `kind` to `facts`' address. A notice's `code` is `None`
    /// whatever the facts hold.
    pub fn mail(&self, kind: MailKind, facts: &MailFacts<'_>) -> Mail {
        let (subject, text) = self.render(kind, facts);
        Mail {
            kind,
            to: facts.email.to_owned(),
            name: facts.name.to_owned(),
            code: facts.code.filter(|_| kind.has_code()).map(str::to_owned),
            subject,
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15 * 60);

    fn facts() -> MailFacts<'static> {
        MailFacts::new("jo@example.com", "Jo")
            .code("123456", TTL)
            .new_email("new@example.com")
    }

    #[test]
    fn every_kind_renders_its_facts() {
        let t = Templates::default();
        for &kind in MailKind::ALL {
            let (subject, body) = t.render(kind, &facts());
            assert!(!subject.is_empty(), "{kind:?}");
            assert!(body.starts_with("Hello Jo,"), "{kind:?}: {body}");
            assert!(
                !body.contains('{') && !subject.contains('{'),
                "{kind:?}: {body}"
            );
            assert_eq!(body.contains("123456"), kind.has_code(), "{kind:?}");
            assert_eq!(body.contains("15 minutes"), kind.has_code(), "{kind:?}");
        }
        let (_, notice) = t.render(MailKind::EmailChangeNotice, &facts());
        assert!(
            notice.contains("from jo@example.com to new@example.com"),
            "{notice}"
        );
        let (_, change) = t.render(MailKind::EmailChangeCode, &facts());
        assert!(change.contains("to new@example.com"), "{change}");
    }

    #[test]
    fn notices_carry_no_code() {
        let t = Templates::default();
        for kind in [MailKind::EmailChangeNotice, MailKind::PasswordChanged] {
            assert!(!kind.has_code());
            let mail = t.mail(kind, &facts());
            assert_eq!(mail.code, None);
            assert!(!mail.text.contains("123456") && !mail.subject.contains("123456"));
            let refused = Templates::default().with(kind, "s", "your code: {code}");
            assert!(
                matches!(refused, Err(TemplateError::UnknownPlaceholder { ref placeholder, .. }) if placeholder == "code"),
                "{refused:?}"
            );
            let refused = Templates::default().with(kind, "code {code}", "b");
            assert!(refused.is_err(), "{kind:?}");
        }
    }

    #[test]
    fn a_code_mail_carries_its_code() {
        let mail = Templates::default().mail(MailKind::Verification, &facts());
        assert_eq!(mail.code.as_deref(), Some("123456"));
        assert_eq!(mail.to, "jo@example.com");
        assert_eq!(mail.name, "Jo");
        assert_eq!(mail.kind, MailKind::Verification);
    }

    #[test]
    fn replacing_one_kind_leaves_the_others() {
        let t = Templates::default()
            .with(
                MailKind::PasswordReset,
                "Reset for {name}",
                "Code {code}, {minutes} min, {{not a placeholder}} {Name} { code }.",
            )
            .unwrap();
        let (subject, body) = t.render(MailKind::PasswordReset, &facts());
        assert_eq!(subject, "Reset for Jo");
        assert_eq!(
            body,
            "Code 123456, 15 min, {{not a placeholder}} {Name} { code }."
        );
        let (subject, _) = t.render(MailKind::Verification, &facts());
        assert_eq!(subject, "Verify your e-mail address");
    }

    #[test]
    fn bad_templates_are_refused() {
        let t = Templates::default;
        assert!(matches!(
            t().with(MailKind::Verification, "s", "no code here"),
            Err(TemplateError::MissingCode { .. })
        ));
        assert!(matches!(
            t().with(MailKind::Verification, "s", "{code} {nmae}"),
            Err(TemplateError::UnknownPlaceholder { ref placeholder, .. }) if placeholder == "nmae"
        ));
        assert!(matches!(
            t().with(MailKind::PasswordChanged, "s", "{new_email}"),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
    }

    #[test]
    fn user_values_are_not_rendered_again() {
        let sly = MailFacts::new("jo@example.com", "{code} {new_email}").code("123456", TTL);
        let t = Templates::default()
            .with(MailKind::Verification, "Hi {name}", "{name}: {code}")
            .unwrap();
        let (subject, body) = t.render(MailKind::Verification, &sly);
        assert_eq!(subject, "Hi {code} {new_email}");
        assert_eq!(body, "{code} {new_email}: 123456");
        let notice = MailFacts::new("jo@example.com", "{code}").code("123456", TTL);
        let mail = Templates::default().mail(MailKind::PasswordChanged, &notice);
        assert!(!mail.text.contains("123456"), "{}", mail.text);
    }

    #[test]
    fn the_subject_is_one_line() {
        let t = Templates::default()
            .with(MailKind::Verification, "Hi {name}\r\n", "{code}")
            .unwrap();
        let evil = MailFacts::new("jo@example.com", "Eve\r\nBcc: x@example.com").code("1", TTL);
        let (subject, body) = t.render(MailKind::Verification, &evil);
        assert_eq!(subject, "Hi Eve  Bcc: x@example.com  ");
        assert_eq!(body, "1");
    }

    #[test]
    fn minutes_round_up() {
        let f = MailFacts::new("a@example.com", "A").code("1", Duration::from_secs(61));
        let (_, body) = Templates::default().render(MailKind::Verification, &f);
        assert!(body.contains("valid for 2 minutes"), "{body}");
    }
}
