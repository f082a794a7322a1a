//! Typos are errors: an unknown dataset type or data-id key on the command
//! line is rejected with the valid names and a "did you mean" suggestion,
//! instead of an empty answer.

use daf_butler::Butler;

use super::CliError;

/// The edit distance between `a` and `b` in characters: insertions,
/// deletions, substitutions and swaps of two neighbours count one each
/// (optimal string alignment).
///
/// ```
/// use daf_cli::cli::typos::distance;
/// assert_eq!(distance("calexp", "calxep"), 1);
/// assert_eq!(distance("visit", "visits"), 1);
/// assert_eq!(distance("raw", "rwa"), 1);
/// assert_eq!(distance("", "abc"), 3);
/// ```
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, x) in d.iter_mut().enumerate().take(w) {
        *x = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The name of `valid` closest to `word`, if it is close enough to be a
/// typo of it (at most a third of the word's length, and at least one edit,
/// apart; case differences count as half an edit).
///
/// ```
/// use daf_cli::cli::typos::did_you_mean;
/// let valid = ["calexp".to_string(), "raw".to_string()];
/// assert_eq!(did_you_mean("calxp", &valid), Some("calexp"));
/// assert_eq!(did_you_mean("RAW", &valid), Some("raw"));
/// assert_eq!(did_you_mean("flat", &valid), None);
/// ```
pub fn did_you_mean<'a>(word: &str, valid: &'a [String]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    valid
        .iter()
        .map(|v| {
            let d = if v.eq_ignore_ascii_case(word) {
                0
            } else {
                distance(&word.to_lowercase(), &v.to_lowercase())
            };
            (d, v)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, v)| (*d, v.len()))
        .map(|(_, v)| v.as_str())
}

/// The error for an unknown `what` (`dataset type`, `data-id key`) named
/// `word`, listing `valid` and suggesting the closest.
pub fn unknown(what: &str, word: &str, valid: &[String], context: &str) -> CliError {
    let mut m = format!("unknown {what} {word:?}{context}");
    if let Some(s) = did_you_mean(word, valid) {
        m.push_str(&format!("; did you mean {s:?}?"));
    }
    const SHOWN: usize = 20;
    if valid.is_empty() {
        m.push_str(&format!(" (there are no {what}s here)"));
    } else if valid.len() <= SHOWN {
        m.push_str(&format!(" (valid: {})", valid.join(", ")));
    } else {
        m.push_str(&format!(
            " (valid: {}, … {} in all{})",
            valid[..SHOWN].join(", "),
            valid.len(),
            if what == "dataset type" {
                "; `daf query-dataset-types REPO` lists them"
            } else {
                ""
            }
        ));
    }
    CliError::new(m)
}

/// Every dataset type a butler knows: the ones its mappers define and the
/// ones its file registries hold rows of, sorted.
pub fn dataset_types(butler: &Butler) -> Result<Vec<String>, CliError> {
    let mut v = butler.dataset_types();
    for i in 0..butler.repositories().len() {
        if let Some(reg) = butler.registry(i) {
            v.extend(reg.dataset_types()?);
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// The data-id keys of `dataset_type` (of every type when `None`): the
/// mappers' keys and the keys of registered data ids, sorted.
pub fn keys(butler: &Butler, dataset_type: Option<&str>) -> Result<Vec<String>, CliError> {
    let types = match dataset_type {
        Some(t) => vec![t.to_string()],
        None => dataset_types(butler)?,
    };
    let mut v = Vec::new();
    for t in &types {
        for i in 0..butler.repositories().len() {
            // a level no policy defines: every key, none removed
            if let Ok(k) = butler.mapper(i).get_keys(t, Some("\u{0}every key")) {
                v.extend(k.into_keys());
            }
            if let Some(reg) = butler.registry(i) {
                for r in reg.find_matching(Some(t), &daf_base::DataId::new(), None)? {
                    v.extend(r.data_id.keys().map(str::to_string));
                }
            }
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// An error unless `dataset_type` is one [`dataset_types`] lists.
pub fn check_dataset_type(butler: &Butler, dataset_type: &str) -> Result<(), CliError> {
    let valid = dataset_types(butler)?;
    let resolved = butler
        .resolve_alias(dataset_type)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| dataset_type.to_string());
    // `calexp.wcs`: a component of a known type
    let base = resolved
        .split_once('.')
        .map_or(resolved.as_str(), |(b, _)| b);
    if valid.iter().any(|v| *v == resolved || v == base) {
        return Ok(());
    }
    Err(unknown("dataset type", dataset_type, &valid, ""))
}

/// An error unless every key of `asked` is a data-id key of `dataset_type`
/// (of any type when `None`); `option` names where the key came from
/// (`--where`, `--keys`, the data id). Keys of a type whose mapper lists
/// none are not checked.
pub fn check_keys<'a>(
    butler: &Butler,
    dataset_type: Option<&str>,
    asked: impl IntoIterator<Item = &'a str>,
    option: &str,
) -> Result<(), CliError> {
    let valid = keys(butler, dataset_type)?;
    if valid.is_empty() {
        return Ok(());
    }
    let types = match dataset_type {
        Some(t) => vec![t.to_string()],
        None => dataset_types(butler)?,
    };
    // a key of a legacy registry's table that no template names (`dateObs`)
    let registry_column = |k: &str| {
        types.iter().any(|t| {
            (0..butler.repositories().len()).any(|i| {
                // a SimpleMapper answers any key (with nothing)
                butler.repositories()[i].cfg.mapper.as_deref() != Some("SimpleMapper")
                    && butler
                        .mapper(i)
                        .query_metadata(t, &[k.to_string()], &daf_base::DataId::new())
                        .is_ok()
            })
        })
    };
    for k in asked {
        if !valid.iter().any(|v| v == k) && !registry_column(k) {
            let ctx = match dataset_type {
                Some(t) => format!(" in {option} for dataset type {t:?}"),
                None => format!(" in {option}"),
            };
            return Err(unknown("data-id key", k, &valid, &ctx));
        }
    }
    Ok(())
}
