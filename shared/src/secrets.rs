//! Secrets from AWS Systems Manager Parameter Store, read once per cold start.
//!
//! A deployed function names its parameter folder in `SECRETS_PREFIX` (`/<stack name>`) and the
//! secrets it uses in `SECRETS` (`jwt-secret,ticket-signing-key`). Each one is a SecureString
//! parameter `<prefix>/<name>`, fetched with one `GetParameters` call (decrypted) before the
//! configuration is read, and stands for the variable of the same name in upper case
//! (`jwt-secret` → `JWT_SECRET`). The values live in the process only; nothing else caches
//! them. Without `SECRETS_PREFIX` (local runs, tests) the environment is used as it is.

#[cfg(feature = "aws")]
use std::collections::HashMap;

#[cfg(feature = "aws")]
use crate::config::Vars;

/// Every secret a function may name, with the variable it stands for.
pub const NAMES: &[&str] = &[
    "jwt-secret",
    "jwt-secret-previous",
    "ticket-signing-key",
    "sandbox-secret",
    "robokassa-password1",
    "robokassa-password2",
    "robokassa-password3",
    "mandarin-secret",
    "sngb-token",
    "sngb-secret",
];

/// `jwt-secret` → `JWT_SECRET`.
pub fn var_of(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The secret names of a `SECRETS` list; unknown names are an error (a typo would otherwise
/// read as a missing secret only when it is first used).
pub fn names(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| match NAMES.contains(&n) {
            true => Ok(n.to_owned()),
            false => Err(format!("SECRETS names {n:?}, which is not one of {}", NAMES.join(", "))),
        })
        .collect()
}

/// The environment with this function's secrets laid over it. Parameters that do not exist are
/// left out (the configuration then refuses to start if the function needs them); any other
/// failure to read them stops the start.
#[cfg(feature = "aws")]
pub async fn overlay(vars: Vars, sdk: Option<&crate::aws::SdkConfig>) -> Result<Vars, String> {
    let (Some(prefix), Some(sdk)) = (vars.get("SECRETS_PREFIX"), sdk) else {
        return Ok(vars);
    };
    let names = names(&vars.get("SECRETS").unwrap_or_default())?;
    let found = fetch(&aws_sdk_ssm::Client::new(sdk), &prefix, &names).await?;
    Ok(vars.overlay(found))
}

/// `<prefix>/<name>` for each name, decrypted, keyed by variable.
#[cfg(feature = "aws")]
pub async fn fetch(
    client: &aws_sdk_ssm::Client,
    prefix: &str,
    names: &[String],
) -> Result<HashMap<String, String>, String> {
    let prefix = prefix.trim_end_matches('/');
    let mut out = HashMap::new();
    // GetParameters takes at most ten names.
    for chunk in names.chunks(10) {
        let paths: Vec<String> = chunk.iter().map(|n| format!("{prefix}/{n}")).collect();
        let got = client.get_parameters().set_names(Some(paths)).with_decryption(true).send().await.map_err(
            |e| format!("reading secrets under {prefix}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)),
        )?;
        for p in got.parameters() {
            let (Some(path), Some(value)) = (p.name(), p.value()) else { continue };
            if let Some(name) = path.strip_prefix(prefix).map(|n| n.trim_start_matches('/')) {
                out.insert(var_of(name), value.to_owned());
            }
        }
        for missing in got.invalid_parameters() {
            tracing::warn!(parameter = %missing, "secret parameter does not exist");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_variables_and_typos_are_refused() {
        assert_eq!(var_of("jwt-secret-previous"), "JWT_SECRET_PREVIOUS");
        assert_eq!(var_of("robokassa-password2"), "ROBOKASSA_PASSWORD2");
        assert_eq!(
            names(" jwt-secret, ticket-signing-key ,").unwrap(),
            vec!["jwt-secret", "ticket-signing-key"]
        );
        assert!(names("jwt-secret,jwt-secrte").unwrap_err().contains("jwt-secrte"));
        assert!(names("").unwrap().is_empty());
    }
}
