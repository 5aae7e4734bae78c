//! The last word on `extensions.code`: every error a client receives carries one. Errors
//! made by our code already do (see `crate::error`, `limits`); this gives the few that
//! async-graphql raises itself during execution, recognised by their wording here and only
//! here, a code too (a unit test per wording, so an upgrade that rewords one fails a test).
use async_graphql::{Name, ServerError, Value};

/// Sets a code on every error in `errors` that has none: an argument value that the engine
/// could not coerce (e.g. `first: 2147483648`, out of `Int`'s range) is
/// `VALIDATION_FAILED` with the field's path in `failures`; anything else is
/// `INTERNAL_SERVER_ERROR`, and is logged.
pub fn ensure_codes(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_some() {
            continue;
        }
        if is_input_coercion(&error.message) {
            let field = error
                .path
                .iter()
                .map(|segment| match segment {
                    async_graphql::PathSegment::Field(name) => name.clone(),
                    async_graphql::PathSegment::Index(index) => index.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            let mut failure = async_graphql::indexmap::IndexMap::new();
            failure.insert(Name::new("field"), Value::from(field));
            failure.insert(Name::new("message"), Value::from(error.message.clone()));
            extensions.set("code", "VALIDATION_FAILED");
            extensions.set("failures", Value::List(vec![Value::Object(failure)]));
        } else {
            tracing::warn!(message = %error.message, "an error without a code reached the response");
            extensions.set("code", "INTERNAL_SERVER_ERROR");
        }
    }
}

/// Whether `message` is async-graphql's report of an argument it could not coerce at
/// execution time (validation lets some through, such as integers outside `Int`).
fn is_input_coercion(message: &str) -> bool {
    message.starts_with("Failed to parse \"") || message.starts_with("Invalid value for argument")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_out_of_range_are_validation_failures() {
        // The message async-graphql 7.2 gives for `first: 2147483648`.
        assert!(is_input_coercion(
            "Failed to parse \"Int\": Only integers from -2147483648 to 2147483647 are accepted."
        ));
        assert!(is_input_coercion(
            "Invalid value for argument \"first\", expected type \"Int\""
        ));
        assert!(!is_input_coercion("Internal server error"));
    }

    #[test]
    fn every_error_gets_a_code() {
        let mut errors = vec![
            ServerError::new("Failed to parse \"Int\": out of range", None),
            ServerError::new("something odd", None),
        ];
        ensure_codes(&mut errors);
        let code = |e: &ServerError| e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code(&errors[0]), Some(Value::from("VALIDATION_FAILED")));
        assert_eq!(code(&errors[1]), Some(Value::from("INTERNAL_SERVER_ERROR")));
    }
}
