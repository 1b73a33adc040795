//! E-mail addresses (interim until the address module lands).

/// A valid address.
#[derive(Clone, Debug)]
pub(crate) struct Address {
    text: String,
    key: String,
}

/// Why an address is refused.
#[derive(Debug, thiserror::Error)]
#[error("Enter a valid e-mail address.")]
pub(crate) struct AddressError;

impl Address {
    /// Parses.
    pub(crate) fn parse(input: &str) -> Result<Address, AddressError> {
        let text = input.trim();
        if text.len() > 254 || !email_address::EmailAddress::is_valid(text) {
            return Err(AddressError);
        }
        Ok(Address {
            text: text.to_owned(),
            key: key_of(text),
        })
    }
    /// The address.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
    /// The key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// The key of any string.
pub(crate) fn key_of(input: &str) -> String {
    input.trim().to_lowercase()
}
