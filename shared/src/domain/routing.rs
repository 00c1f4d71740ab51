//! Routes: which escalation policy an alert follows (ARCHITECTURE.md §9).
//! Alertmanager matcher syntax (`=`, `!=`, `=~`, `!~`, values quoted or bare,
//! regexes anchored), ordered routes, first match wins; the label
//! `escalation_policy` picks a policy directly and wins over routes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::ValidationError;
use super::incident::Severity;

/// The label that names a policy directly.
pub const POLICY_LABEL: &str = "escalation_policy";
/// Most routes.
pub const MAX_ROUTES: usize = 100;
/// Most matchers a route.
pub const MAX_MATCHERS: usize = 20;
/// Largest compiled regex (bytes), so hostile patterns cannot blow up.
const REGEX_SIZE_LIMIT: usize = 1 << 16;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regex)
    Regex,
    /// `!~` (anchored regex)
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// A matcher that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher {matcher:?}: {reason}")]
pub struct MatcherError {
    /// The matcher as written.
    pub matcher: String,
    /// What is wrong.
    pub reason: String,
}

/// One label matcher (`service=payments`, `env=~"prod.*"`).
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value (a regex for `=~`/`!~`).
    pub value: String,
    regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

fn unquote(text: &str) -> Result<String, String> {
    let Some(inner) = text.strip_prefix('"') else {
        return Ok(text.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return Err("an opening quote without a closing one".into());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(e @ ('"' | '\\')) => out.push(e),
                Some(other) => return Err(format!("unknown escape \\{other}")),
                None => return Err("a trailing backslash".into()),
            },
            '"' => return Err("an unescaped quote inside the value".into()),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles `value` anchored at both ends (`^(?:value)$`, as Alertmanager), with a
/// size limit. The value is compiled on its own first, so that one such as `a)|(b`
/// cannot close the group and escape the anchors.
fn anchored(value: &str) -> Result<regex::Regex, String> {
    let build = |pattern: &str| {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // A syntax error spans lines (pattern, caret, "error: …"): keep the "error:" one.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("error: "))
                    .unwrap_or(&text)
                    .to_string();
                format!("invalid regex: {reason}")
            })
    };
    build(value)?;
    build(&format!("^(?:{value})$"))
}

impl Matcher {
    /// Parses one matcher (`name=value`, `name!=value`, `name=~regex`, `name!~regex`;
    /// the value bare or double-quoted with `\"`, `\\`, `\n` escapes).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let fail = |reason: String| MatcherError {
            matcher: text.to_string(),
            reason,
        };
        let at = text
            .find(['=', '!'])
            .ok_or_else(|| fail("no operator (=, !=, =~, !~)".into()))?;
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|v| (*op, v)))
        .ok_or_else(|| fail("no operator (=, !=, =~, !~)".into()))?;
        if !valid_name(name) {
            return Err(fail(format!(
                "{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        let value = unquote(value.trim()).map_err(fail)?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(anchored(&value).map_err(fail)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` match (a missing label is the empty string).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let have = labels.get(&self.name).map_or("", String::as_str);
        let regex = || self.regex.as_ref().is_some_and(|r| r.is_match(have));
        match self.op {
            MatchOp::Equal => have == self.value,
            MatchOp::NotEqual => have != self.value,
            MatchOp::Regex => regex(),
            MatchOp::NotRegex => !regex(),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(f, "{}{}\"{escaped}\"", self.name, self.op.as_str())
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One route: matchers (all must hold), optional severities, and the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Name.
    pub name: String,
    /// Label matchers.
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Severities the route takes (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severities: Option<Vec<Severity>>,
    /// The policy, by id or name.
    pub policy: String,
}

impl Route {
    fn takes(&self, labels: &BTreeMap<String, String>, severity: Severity) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
            && self
                .severities
                .as_ref()
                .is_none_or(|list| list.contains(&severity))
    }
}

/// The policy (id or name) an alert follows: its `escalation_policy` label, else
/// the first route that takes it.
pub fn route_policy<'a>(
    routes: &'a [Route],
    labels: &'a BTreeMap<String, String>,
    severity: Severity,
) -> Option<&'a str> {
    if let Some(named) = labels
        .get(POLICY_LABEL)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        return Some(named);
    }
    routes
        .iter()
        .find(|r| r.takes(labels, severity))
        .map(|r| r.policy.trim())
}

/// Checks routes: names, sizes, and that each names an existing policy.
pub fn validate_routes(
    routes: &[Route],
    policy_exists: impl Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if routes.len() > MAX_ROUTES {
        return Err(ValidationError::new(
            "routes",
            format!("at most {MAX_ROUTES} routes"),
        ));
    }
    for (i, route) in routes.iter().enumerate() {
        let name = route.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ValidationError::new(
                &format!("routes[{i}].name"),
                "must be 1 to 100 characters",
            ));
        }
        if route.matchers.len() > MAX_MATCHERS {
            return Err(ValidationError::new(
                &format!("routes[{i}].matchers"),
                format!("at most {MAX_MATCHERS} matchers a route"),
            ));
        }
        if route.severities.as_ref().is_some_and(Vec::is_empty) {
            return Err(ValidationError::new(
                &format!("routes[{i}].severities"),
                "leave it out to take every severity; an empty list takes none",
            ));
        }
        if !policy_exists(route.policy.trim()) {
            return Err(ValidationError::new(
                &format!("routes[{i}].policy"),
                format!(
                    "no escalation policy {:?} (by id or name): create it first",
                    route.policy
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a `PUT …/routes` body; a bad shape or matcher is an error naming the field.
pub fn parse_routes(body: &Value) -> Result<Vec<Route>, ValidationError> {
    let list = body
        .as_array()
        .ok_or_else(|| ValidationError::new("routes", "the body must be a JSON array of routes"))?;
    let mut routes = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        if let Some(matchers) = entry.get("matchers").and_then(Value::as_array) {
            for (j, matcher) in matchers.iter().enumerate() {
                let field = format!("routes[{i}].matchers[{j}]");
                let text = matcher
                    .as_str()
                    .ok_or_else(|| ValidationError::new(&field, "a matcher is a string"))?;
                Matcher::parse(text).map_err(|e| ValidationError::new(&field, e.to_string()))?;
            }
        }
        let route: Route = serde_json::from_value(entry.clone()).map_err(|e| {
            ValidationError::new(&format!("routes[{i}]"), format!("not a route: {e}"))
        })?;
        routes.push(route);
    }
    Ok(routes)
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
