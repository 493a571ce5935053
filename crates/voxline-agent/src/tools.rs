//! Business tools over HTTP: JSON arguments out, a JSON result back, within
//! the tool's timeout; and the spoken templates filled from the result.

use crate::pack::ToolSpec;
use std::collections::BTreeMap;
use std::time::Duration;

/// A tool the conversation decided to call, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments (all strings: digits, enum values).
    pub args: BTreeMap<String, String>,
}

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No answer in time, or the connection failed.
    #[error("calling {url}: {why}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// Why.
        why: String,
    },
    /// The service answered with an error status or not with JSON.
    #[error("{url} answered {why}")]
    BadAnswer {
        /// The endpoint.
        url: String,
        /// What was wrong.
        why: String,
    },
}

/// Calls `spec`'s endpoint with `args` (a JSON object; GET sends them as the query).
pub async fn invoke(
    http: &reqwest::Client,
    spec: &ToolSpec,
    args: &BTreeMap<String, String>,
) -> Result<serde_json::Value, ToolError> {
    let url = spec.url.clone().unwrap_or_default();
    let req = if spec.method == "GET" {
        http.get(&url).query(args)
    } else {
        http.post(&url).json(args)
    };
    let resp = req
        .timeout(Duration::from_millis(spec.timeout_ms))
        .send()
        .await
        .map_err(|e| ToolError::Unreachable {
            url: url.clone(),
            why: if e.is_timeout() {
                format!("no answer within {} ms", spec.timeout_ms)
            } else {
                e.to_string()
            },
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ToolError::BadAnswer {
            url,
            why: format!("HTTP {status}"),
        });
    }
    resp.json().await.map_err(|e| ToolError::BadAnswer {
        url,
        why: format!("not JSON: {e}"),
    })
}

/// Fills `{field}` from the result's top-level fields, else from the arguments;
/// an unknown field is left as it is.
pub fn fill_template(template: &str, result: &serde_json::Value, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let key = &after[..close];
        let value = match result.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v @ serde_json::Value::Number(_)) | Some(v @ serde_json::Value::Bool(_)) => Some(v.to_string()),
            _ => args.get(key).cloned(),
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_result_fields_then_arguments() {
        let result = serde_json::json!({"balance": "1,234.50", "days": 5});
        let args = BTreeMap::from([("last4".to_string(), "4321".to_string())]);
        assert_eq!(
            fill_template(
                "Card {last4}: {balance} dollars in {days} days {unknown}.",
                &result,
                &args
            ),
            "Card 4321: 1,234.50 dollars in 5 days {unknown}."
        );
        assert_eq!(fill_template("broken {brace", &result, &args), "broken {brace");
    }
}
