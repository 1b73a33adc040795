//! E-mail addresses: parsing, validation and the lookup key that makes
//! look-alike spellings of one mailbox one account.
//!
//! [`Address::parse`] accepts what mail can reliably be delivered to and
//! nothing that displays differently from what it is:
//!
//! - surrounding whitespace is trimmed; at most 254 characters remain;
//! - no C0/C1 controls and no default-ignorable code points (zero-width
//!   spaces and joiners, U+2060, U+FEFF, soft hyphen, variation selectors,
//!   bidi controls such as U+200E/U+200F, U+061C, U+202A–U+202E,
//!   U+2066–U+2069), anywhere;
//! - the local part is an RFC 5322 dot-atom of ASCII `atext`, at most 64
//!   octets: no quoted strings, comments, or leading, trailing or doubled
//!   dots. Non-ASCII local parts (RFC 6531) are refused: they need SMTPUTF8
//!   on every hop, and Unicode has no agreed case folding or normalisation
//!   for them, so look-alike twins would get separate keys;
//! - the domain is a host name with at least one dot whose top-level label
//!   is not all digits (no `[...]` literals, no `1.2.3.4`), valid under
//!   UTS 46 (`idna`) with STD3 ASCII rules, no hyphen first or last in a
//!   label, and DNS lengths.
//!
//! The domain is kept in its IDNA ASCII form (`xn--bcher-kva.example` for
//! `Bücher.example`), in [`Address::as_str`] as well as in [`Address::key`]:
//! with an ASCII local part this makes the whole address ASCII, which every
//! mailer and SMTP server delivers to without SMTPUTF8, and a domain spelled
//! with look-alike letters (Cyrillic `а` for Latin `a`) shows as the
//! `xn--` label it is rather than as the name it imitates. An app that wants
//! the Unicode form for display gets it from `idna::domain_to_unicode`.

use icu_properties::CodePointSetData;
use icu_properties::props::DefaultIgnorableCodePoint;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// Longest address (RFC 5321 path limit).
const MAX_ADDRESS: usize = 254;
/// Longest local part, in octets (RFC 5321).
const MAX_LOCAL: usize = 64;

/// A valid e-mail address: what to store and send to, and its lookup key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Address {
    address: String,
    key: String,
}

/// Why [`Address::parse`] refused an input. The message is written for the
/// user, to show next to the form field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AddressError {
    /// Nothing but whitespace.
    #[error("Enter an e-mail address.")]
    Empty,
    /// Longer than 254 characters.
    #[error("Use at most {MAX_ADDRESS} characters.")]
    TooLong,
    /// A control, zero-width, bidi or other invisible character.
    #[error("Remove the invisible or control characters from the address.")]
    InvisibleCharacters,
    /// Not one `@` between a dot-atom local part and a domain.
    #[error("Enter an address like name@example.com.")]
    Syntax,
    /// A non-ASCII character before the `@`.
    #[error("Use only ASCII letters, digits and punctuation before the @.")]
    NonAsciiLocalPart,
    /// More than 64 octets before the `@`.
    #[error("Use at most {MAX_LOCAL} characters before the @.")]
    LocalPartTooLong,
    /// A `[...]` address literal instead of a domain.
    #[error("Use a domain name after the @, not an IP address.")]
    IpLiteral,
    /// Not a usable domain name.
    #[error("Enter a valid domain after the @, like example.com.")]
    Domain,
}

impl Address {
    /// Parses and validates `input` (see the module docs for the rules).
    pub(crate) fn parse(input: &str) -> Result<Address, AddressError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        if input.chars().count() > MAX_ADDRESS {
            return Err(AddressError::TooLong);
        }
        let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
        if input
            .chars()
            .any(|c| c.is_control() || ignorable.contains(c))
        {
            return Err(AddressError::InvisibleCharacters);
        }
        let (local, domain) = input.split_once('@').ok_or(AddressError::Syntax)?;
        if domain.contains('@') {
            return Err(AddressError::Syntax);
        }
        check_local(local)?;
        let domain = ascii_domain(domain)?;
        if local.len() + 1 + domain.len() > MAX_ADDRESS {
            return Err(AddressError::TooLong);
        }
        Ok(Address {
            address: format!("{local}@{domain}"),
            key: format!("{}@{domain}", local.to_ascii_lowercase()),
        })
    }

    /// The address to store and send to: the local part as typed, `@`, the
    /// domain in lower-case IDNA ASCII form.
    pub(crate) fn as_str(&self) -> &str {
        &self.address
    }

    /// The lookup key: the local part lower-cased, `@`, the domain in
    /// IDNA ASCII form. Two addresses with one key are one account.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// A dot-atom of ASCII `atext` (RFC 5322 section 3.2.3), at most 64 octets.
fn check_local(local: &str) -> Result<(), AddressError> {
    if !local.is_ascii() {
        return Err(AddressError::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL {
        return Err(AddressError::LocalPartTooLong);
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    // Splitting on dots leaves an empty atom for a leading, trailing or
    // doubled dot, and for an empty local part.
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.bytes().all(atext))
    {
        return Err(AddressError::Syntax);
    }
    Ok(())
}

/// The domain in UTS 46 ASCII form, if it is a host name fit for mail.
fn ascii_domain(domain: &str) -> Result<String, AddressError> {
    if domain.starts_with('[') {
        return Err(AddressError::IpLiteral);
    }
    // `CheckFirstLast` rather than `idna::domain_to_ascii_strict`'s `Check`:
    // hyphens in the third and fourth places occur in real host names
    // (`r3---sn-abc.example.com`) and cannot make an IDN twin.
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| AddressError::Domain)?;
    match ascii.rsplit_once('.') {
        Some((_, tld)) if !tld.bytes().all(|b| b.is_ascii_digit()) => Ok(ascii.into_owned()),
        _ => Err(AddressError::Domain),
    }
}

/// The key of any string, for looking up input that may not parse (the
/// sign-in `login`): [`Address::key`] when `input` parses; otherwise the
/// input trimmed and lower-cased, which never equals the key of a valid
/// address.
///
/// Never contains an ASCII upper-case letter.
pub(crate) fn key_of(input: &str) -> String {
    if let Ok(address) = Address::parse(input) {
        return address.key;
    }
    // Every valid key is ASCII and parses, and parsing ignores ASCII case, so
    // a lower-cased input that failed can only become a valid key if
    // lower-casing turned non-ASCII into ASCII (KELVIN SIGN into `k`). There,
    // fold ASCII only and keep the non-ASCII as typed.
    let trimmed = input.trim();
    let folded = trimmed.to_lowercase();
    if folded.is_ascii() && !trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        folded
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rekey;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use rekey::{Rekey, StoredAddress, plan_rekey};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(input: &str) -> Address {
        Address::parse(input).unwrap_or_else(|e| panic!("{input:?} refused: {e:?}"))
    }

    #[test]
    fn accepted_addresses_keep_the_local_part_and_key_it_lower_cased() {
        let local_64 = "a".repeat(64);
        let long_domain = format!(
            "{}.{}.{}.example",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(53)
        );
        let longest = format!("{local_64}@{long_domain}");
        assert_eq!(longest.len(), 254);
        let cases: &[(&str, &str, &str)] = &[
            ("name@example.com", "name@example.com", "name@example.com"),
            (
                " \t Name.Surname+Tag@Example.COM \n",
                "Name.Surname+Tag@example.com",
                "name.surname+tag@example.com",
            ),
            (
                "a!#$%&'*+-/=?^_`{|}~Z@example.com",
                "a!#$%&'*+-/=?^_`{|}~Z@example.com",
                "a!#$%&'*+-/=?^_`{|}~z@example.com",
            ),
            (
                "u@sub.example.co.uk",
                "u@sub.example.co.uk",
                "u@sub.example.co.uk",
            ),
            (
                "u@Bücher.example",
                "u@xn--bcher-kva.example",
                "u@xn--bcher-kva.example",
            ),
            (
                "u@XN--BCHER-KVA.example",
                "u@xn--bcher-kva.example",
                "u@xn--bcher-kva.example",
            ),
            (
                "u@例え.テスト",
                "u@xn--r8jz45g.xn--zckzah",
                "u@xn--r8jz45g.xn--zckzah",
            ),
            // UTS 46 maps the ideographic full stop and full-width letters.
            ("u@example\u{3002}com", "u@example.com", "u@example.com"),
            ("u@ｅｘａｍｐｌｅ.com", "u@example.com", "u@example.com"),
            // Non-transitional: ß is its own letter, not "ss".
            ("u@straße.de", "u@xn--strae-oqa.de", "u@xn--strae-oqa.de"),
            (
                "u@r3---sn-abc.example.com",
                "u@r3---sn-abc.example.com",
                "u@r3---sn-abc.example.com",
            ),
            ("u@123.example", "u@123.example", "u@123.example"),
            (
                "u@example.xn--p1ai",
                "u@example.xn--p1ai",
                "u@example.xn--p1ai",
            ),
            (&longest, &longest, &longest),
        ];
        for &(input, address, key) in cases {
            let parsed = parse(input);
            assert_eq!(parsed.as_str(), address, "{input:?}");
            assert_eq!(parsed.key(), key, "{input:?}");
        }
    }

    #[test]
    fn refused_addresses_say_why() {
        use AddressError::*;
        let local_65 = format!("{}@example.com", "a".repeat(65));
        let label_64 = format!("u@{}.example", "b".repeat(64));
        let long = format!(
            "{}@{}.{}.{}.example",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(54)
        );
        assert_eq!(long.len(), 255);
        let huge = "a".repeat(100_000);
        let cases: &[(&str, AddressError)] = &[
            ("", Empty),
            (" \t\n ", Empty),
            (&long, TooLong),
            (&huge, TooLong),
            (&local_65, LocalPartTooLong),
            ("plainaddress", Syntax),
            ("@example.com", Syntax),
            ("a@b@example.com", Syntax),
            ("\"john doe\"@example.com", Syntax),
            ("\"john\"@example.com", Syntax),
            ("\"a@b\"@example.com", Syntax),
            (".user@example.com", Syntax),
            ("user.@example.com", Syntax),
            ("us..er@example.com", Syntax),
            ("us er@example.com", Syntax),
            ("user(comment)@example.com", Syntax),
            ("a,b@example.com", Syntax),
            ("Name <name@example.com>", Syntax),
            ("jöhn@example.com", NonAsciiLocalPart),
            ("\u{212A}@example.com", NonAsciiLocalPart),
            ("用户@例え.テスト", NonAsciiLocalPart),
            ("user@[127.0.0.1]", IpLiteral),
            ("user@[IPv6:2001:db8::1]", IpLiteral),
            ("user@", Domain),
            ("user@127.0.0.1", Domain),
            ("user@example.123", Domain),
            ("user@localhost", Domain),
            ("user@example", Domain),
            ("user@Bücher", Domain),
            ("user@example.com.", Domain),
            ("user@.example.com", Domain),
            ("user@example..com", Domain),
            ("user@-example.com", Domain),
            ("user@example-.com", Domain),
            ("user@exa_mple.com", Domain),
            ("user@exa mple.com", Domain),
            ("user@exa\u{a0}mple.com", Domain),
            ("user@xn--a.com", Domain),
            ("user@xn--bcher-.com", Domain),
            ("user@example.com/", Domain),
            ("user@example.com:25", Domain),
            (&label_64, Domain),
        ];
        for &(input, expected) in cases {
            assert_eq!(Address::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn invisible_and_control_characters_are_refused_in_either_part() {
        let invisible = [
            '\u{0}',
            '\u{7}',
            '\n',
            '\u{7f}',
            '\u{85}',
            '\u{9f}', // C0, DEL, C1
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{34F}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{3164}', // zero-width, joiners, soft hyphen, selectors, tags, fillers
            '\u{200E}',
            '\u{200F}',
            '\u{61C}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // bidi controls
        ];
        for c in invisible {
            let mut inputs = vec![
                format!("us{c}er@example.com"),
                format!("user{c}@example.com"),
                format!("user@{c}example.com"),
                format!("user@exa{c}mple.com"),
                format!("user@bü{c}cher.example"),
            ];
            // Surrounding whitespace (\n, U+0085) is trimmed, not refused.
            if !c.is_whitespace() {
                inputs.extend([
                    format!("{c}user@example.com"),
                    format!("user@example.com{c}"),
                ]);
            }
            for input in inputs {
                assert_eq!(
                    Address::parse(&input),
                    Err(AddressError::InvisibleCharacters),
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn unicode_and_punycode_twins_and_case_variants_share_one_key() {
        let twins = [
            "user@Bücher.example",
            "user@bücher.example",
            "USER@BÜCHER.EXAMPLE",
            "user@xn--bcher-kva.example",
            "User@XN--BCHER-KVA.EXAMPLE",
            " user@bücher.example ",
        ];
        for twin in twins {
            assert_eq!(parse(twin).key(), "user@xn--bcher-kva.example", "{twin:?}");
            assert_eq!(key_of(twin), "user@xn--bcher-kva.example", "{twin:?}");
        }
        assert_eq!(
            parse("Alice@Example.com").key(),
            parse("aLICE@eXAMPLE.COM").key()
        );
        assert_ne!(
            parse("user@bücher.example").key(),
            parse("user@bucher.example").key()
        );
    }

    #[test]
    fn key_of_falls_back_to_trim_and_lower_case_and_never_to_a_valid_key() {
        assert_eq!(key_of(" \"John\"@Example.COM "), "\"john\"@example.com");
        assert_eq!(key_of("JÖHN@Example.com"), "jöhn@example.com");
        assert_eq!(key_of("User@LOCALHOST"), "user@localhost");
        // KELVIN SIGN lower-cases to ASCII "k": kept, or it would be the key
        // of k@example.com.
        assert_eq!(key_of("\u{212A}@Example.com"), "\u{212A}@example.com");
        assert_eq!(key_of("\u{212A}\u{212A}Ö@x.com"), "kkö@x.com");
        // Non-ASCII, so no valid key, though it parses (as k@a.xn--3xa).
        assert_eq!(key_of("\u{212A}@a.Σ"), "k@a.ς");
    }

    /// Strings near addresses: atext and not, dots, @, Unicode letters that
    /// case-fold or map under UTS 46, look-alikes and invisibles.
    fn near_address() -> impl Strategy<Value = String> {
        let local = "[a-zA-Z0-9.+_!'~\"() \u{212A}\u{E9}\u{C9}\u{200B}\u{202E}-]{0,12}";
        let domain = "[a-zA-Z0-9.\u{3002}\u{FF0E}\u{FF21}\u{FC}\u{DC}\u{DF}\u{1E9E}\u{3C3}\u{3A3}\u{430}\u{212A}\u{200D}_\\[\\]-]{0,24}";
        prop_oneof![
            (local, domain).prop_map(|(l, d)| format!("{l}@{d}")),
            "[a-zA-Z]{1,8}(\\.[a-zA-Z]{1,8})?@[a-zA-Z\u{FC}\u{DF}\u{430}-]{1,10}\\.(xn--[a-z0-9]{1,8}|[a-zA-Z]{2,4})",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parsing_what_parse_gives_back_is_idempotent(s in near_address()) {
            if let Ok(a) = Address::parse(&s) {
                let again = Address::parse(a.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&a));
                let from_key = Address::parse(a.key());
                prop_assert_eq!(from_key.as_ref().map(Address::key), Ok(a.key()));
                prop_assert_eq!(key_of(&s), a.key());
                prop_assert!(a.as_str().is_ascii());
                let upper = Address::parse(&s.to_ascii_uppercase());
                prop_assert_eq!(upper.as_ref().map(Address::key), Ok(a.key()));
            }
        }

        #[test]
        fn key_of_an_invalid_input_is_no_valid_key(s in near_address()) {
            let key = key_of(&s);
            prop_assert!(!key.bytes().any(|b| b.is_ascii_uppercase()));
            // A valid key is the key of itself (see the test above).
            if Address::parse(&s).is_err() {
                let reparsed = Address::parse(&key);
                prop_assert_ne!(reparsed.as_ref().map(Address::key), Ok(key.as_str()), "{:?}", s);
            }
        }
    }
}
