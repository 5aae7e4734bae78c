//! The last word on `extensions.code`: every error a client receives carries one. Errors
//! made by our code already do (see `crate::error`, `limits`); this gives the few that
//! async-graphql raises itself during execution, recognised by their wording here and only
//! here, a code too (a unit test per wording, so an upgrade that rewords one fails a test).
use crate::code::Code;
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
            extensions.set("code", Code::ValidationFailed.as_str());
            extensions.set("failures", Value::List(vec![Value::Object(failure)]));
        } else {
            tracing::warn!(message = %error.message, "an error without a code reached the response");
            extensions.set("code", Code::InternalServerError.as_str());
        }
    }
}

/// What an error async-graphql raised itself means, recognised by its wording (async-graphql
/// 7.2's messages; here and nowhere else): the complexity and depth limits of validation,
/// the recursion and directive limits of parsing, and an argument it could not coerce at execution time
/// (validation lets some through, such as integers outside `Int`). `None`: no wording we know.
pub fn engine_code(message: &str) -> Option<Code> {
    match message {
        "Query is too complex." => Some(Code::QueryTooComplex),
        "Query is nested too deep." => Some(Code::QueryTooDeep),
        m if m.starts_with("The recursion depth of the query cannot be greater than")
            || m.ends_with("recursion limit exceeded.") =>
        {
            Some(Code::QueryTooDeep)
        }
        m if m.starts_with("The number of directives on the field") => {
            Some(Code::TooManyDirectives)
        }
        m if m.starts_with("Failed to parse \"") || m.starts_with("Invalid value for argument") => {
            Some(Code::ValidationFailed)
        }
        _ => None,
    }
}

/// Whether `message` is async-graphql's report of an argument it could not coerce.
fn is_input_coercion(message: &str) -> bool {
    engine_code(message) == Some(Code::ValidationFailed)
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
    fn the_engines_limit_messages_are_recognised() {
        assert_eq!(
            engine_code("Query is too complex."),
            Some(Code::QueryTooComplex)
        );
        assert_eq!(
            engine_code("Query is nested too deep."),
            Some(Code::QueryTooDeep)
        );
        assert_eq!(
            engine_code("The recursion depth of the query cannot be greater than `32`"),
            Some(Code::QueryTooDeep)
        );
        assert_eq!(
            engine_code(" --> 1:300\n  |\n  = recursion limit exceeded."),
            Some(Code::QueryTooDeep)
        );
        assert_eq!(
            engine_code(
                "The number of directives on the field `contacts` cannot be greater than `5`"
            ),
            Some(Code::TooManyDirectives)
        );
        assert_eq!(engine_code("Unknown field \"x\" on type \"Query\"."), None);
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
