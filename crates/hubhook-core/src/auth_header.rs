//! The Cloud Elements `Authorization` header:
//! `User <user secret>, Organization <organization secret>[, Element <instance token>]`.

/// The credentials carried by one `Authorization` header. Each part is optional here; which
/// parts a route needs is the API's decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthHeader {
    pub user: Option<String>,
    pub organization: Option<String>,
    pub element: Option<String>,
}

/// Why an `Authorization` header was refused. The messages never include secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthHeaderError {
    #[error(
        "the Authorization header is empty; expected `User <secret>, Organization <secret>[, Element <token>]`"
    )]
    Empty,
    #[error(
        "the Authorization header has an empty part; expected comma-separated `<Scheme> <value>` pairs"
    )]
    EmptyPart,
    #[error("unknown Authorization scheme `{0}`; expected User, Organization or Element")]
    UnknownScheme(String),
    #[error("the Authorization scheme `{0}` appears more than once")]
    DuplicateScheme(String),
    #[error("the Authorization scheme `{0}` has no value")]
    EmptyValue(String),
    #[error("the value of the Authorization scheme `{0}` contains spaces")]
    InvalidValue(String),
}

/// An unknown scheme as a refusal shows it: a word such as `Bearer` as it is, anything else
/// (a secret sent without its scheme, 100 KB of text) only by its length, so that a refusal
/// never repeats a secret or an attacker's bulk.
fn shown_scheme(scheme: &str) -> String {
    if scheme.len() <= 20 && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
        scheme.to_owned()
    } else {
        format!("<{} characters, not shown>", scheme.chars().count())
    }
}

/// Parses the header. Parts may come in any order, scheme names are case-insensitive, spaces
/// around parts are tolerated, and values may contain `/`, `+`, `=` and `.`.
pub fn parse_authorization(header: &str) -> Result<AuthHeader, AuthHeaderError> {
    if header.trim().is_empty() {
        return Err(AuthHeaderError::Empty);
    }
    let mut parsed = AuthHeader::default();
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(AuthHeaderError::EmptyPart);
        }
        let (scheme, value) = match part.split_once(char::is_whitespace) {
            Some((scheme, value)) => (scheme, value.trim()),
            None => (part, ""),
        };
        let slot = match scheme.to_ascii_lowercase().as_str() {
            "user" => &mut parsed.user,
            "organization" => &mut parsed.organization,
            "element" => &mut parsed.element,
            _ => return Err(AuthHeaderError::UnknownScheme(shown_scheme(scheme))),
        };
        if slot.is_some() {
            return Err(AuthHeaderError::DuplicateScheme(scheme.to_owned()));
        }
        if value.is_empty() {
            return Err(AuthHeaderError::EmptyValue(scheme.to_owned()));
        }
        if value.contains(char::is_whitespace) {
            return Err(AuthHeaderError::InvalidValue(scheme.to_owned()));
        }
        *slot = Some(value.to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(user: Option<&str>, org: Option<&str>, element: Option<&str>) -> AuthHeader {
        AuthHeader {
            user: user.map(str::to_owned),
            organization: org.map(str::to_owned),
            element: element.map(str::to_owned),
        }
    }

    fn check(header: &str, expected: Result<AuthHeader, AuthHeaderError>) {
        assert_eq!(parse_authorization(header), expected, "{header}");
    }

    #[test]
    fn parses_valid_headers() {
        check(
            "User abc, Organization def",
            Ok(auth(Some("abc"), Some("def"), None)),
        );
        check(
            "User a/b+c=, Organization d.e=, Element ABC/Dxx+y=",
            Ok(auth(Some("a/b+c="), Some("d.e="), Some("ABC/Dxx+y="))),
        );
        check(
            "element tok ,  ORGANIZATION   o ,user u",
            Ok(auth(Some("u"), Some("o"), Some("tok"))),
        );
        check("User u, Element t", Ok(auth(Some("u"), None, Some("t"))));
    }

    #[test]
    fn rejects_invalid_headers() {
        use AuthHeaderError::*;
        check("", Err(Empty));
        check("   ", Err(Empty));
        check("User a,, Organization b", Err(EmptyPart));
        check("User a, Organization b,", Err(EmptyPart));
        check("Bearer xyz", Err(UnknownScheme("Bearer".into())));
        check("User a, user b", Err(DuplicateScheme("user".into())));
        check("User , Organization b", Err(EmptyValue("User".into())));
        check(
            "User a, Organization",
            Err(EmptyValue("Organization".into())),
        );
        check("User a b, Organization c", Err(InvalidValue("User".into())));
    }

    #[test]
    fn errors_do_not_leak_secrets() {
        let error = parse_authorization("User sekrit value, Organization o").expect_err("invalid");
        assert!(!error.to_string().contains("sekrit"));
        // A secret sent without its scheme reads as a scheme: shown by its length only, as
        // is a megabyte of text.
        let error = parse_authorization("dGhpcyBpcyBhIHNlY3JldA==").expect_err("invalid");
        assert_eq!(
            error,
            AuthHeaderError::UnknownScheme("<24 characters, not shown>".into())
        );
        let error = parse_authorization(&"a".repeat(100_000)).expect_err("invalid");
        assert!(error.to_string().len() < 200, "{error}");
    }
}

#[cfg(test)]
mod properties {
    //! Generated headers never make the parser panic, and headers written from parts read back
    //! as those parts.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_headers_never_panic(header in prop_oneof![
            any::<String>(),
            "((User|Organization|Element|Bearer)? ?[a-z=/+ ]{0,6},? ?){0,5}",
        ]) {
            let _ = parse_authorization(&header);
        }

        #[test]
        fn errors_never_show_values(
            scheme in "(User|Organization|Element|Bearer|user)",
            value in "[a-z]{1,8} [a-z]{1,8}|,|",
            rest in "(, (User|Element) [a-z]{0,3}){0,2}",
        ) {
            let secret = format!("S3CR3T{value}");
            let header = format!("{scheme} {secret}{rest}");
            if let Err(error) = parse_authorization(&header) {
                prop_assert!(!error.to_string().contains("S3CR3T"), "{}", error);
            }
        }

        #[test]
        fn written_headers_read_back(
            user in prop::option::of("[A-Za-z0-9/+=.]{1,20}"),
            organization in prop::option::of("[A-Za-z0-9/+=.]{1,20}"),
            element in prop::option::of("[A-Za-z0-9/+=.]{1,20}"),
            order in 0u8..6,
        ) {
            let mut parts = Vec::new();
            if let Some(u) = &user { parts.push(format!("User {u}")); }
            if let Some(o) = &organization { parts.push(format!("Organization {o}")); }
            if let Some(e) = &element { parts.push(format!("Element {e}")); }
            prop_assume!(!parts.is_empty());
            let rotation = usize::from(order) % parts.len();
            parts.rotate_left(rotation);
            let header = parts.join(", ");
            prop_assert_eq!(
                parse_authorization(&header),
                Ok(AuthHeader { user, organization, element })
            );
        }
    }

    #[test]
    fn a_megabyte_header_is_read_in_one_pass() {
        let header = format!("User {}", "a".repeat(1 << 20));
        assert_eq!(
            parse_authorization(&header).map(|h| h.user.map(|u| u.len())),
            Ok(Some(1 << 20))
        );
        let commas = ",".repeat(1 << 20);
        assert_eq!(
            parse_authorization(&commas),
            Err(AuthHeaderError::EmptyPart)
        );
    }
}
