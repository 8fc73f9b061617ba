//! Detectors: what finds sensitive data in one text, and how sure each match is. A validated
//! detector (cards, IBANs, national IDs) alone gives medium confidence, high with one of its
//! supporting keywords within `proximity` characters; a regular expression alone gives low,
//! medium with keywords; a keyword list's own words give medium. A number written bare where it
//! is usually printed in groups (an SSN, a German tax ID, a Dutch BSN, a French NIR), and a
//! Spanish DNI, count one level lower.

use std::ops::Range;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::{
    card,
    confidence::Confidence,
    digits,
    evaluate::NearbyKeyword,
    iban::IbanFinder,
    keywords::Keywords,
    mask::mask,
    national::{self, Layout},
};

/// The default distance of supporting keywords, in characters.
pub(crate) const DEFAULT_PROXIMITY: usize = 300;
/// The default compiled size limit of a rule's regular expression, in bytes of automaton.
pub(crate) const DEFAULT_REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Regex and keyword excerpts are cut at this many characters.
const MAX_EXCERPT_CHARS: usize = 80;
/// Evidence names at most this many supporting keywords per match, the nearest.
const MAX_KEYWORDS_PER_MATCH: usize = 3;

/// What a detector looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// Payment card numbers (Luhn, brand prefixes and lengths, test numbers excluded).
    PaymentCard,
    /// IBANs (country, length, BBAN layout, mod-97).
    Iban,
    /// US Social Security numbers (area, group and serial rules).
    UsSsn,
    /// German tax IDs (digit-count rule, ISO 7064 MOD 11,10).
    DeTaxId,
    /// Dutch citizen service numbers, BSN (the 11-proof).
    NlBsn,
    /// Spanish DNIs and NIEs (the mod-23 check letter).
    EsDni,
    /// French social security numbers, NIR (birth month, department, mod-97 key).
    FrNir,
    /// A regular expression (the `regex` crate's syntax).
    Regex,
    /// A list of keywords or phrases.
    Keywords,
}

impl DetectorKind {
    /// True for the detectors whose matches pass a check beyond their shape.
    fn validated(self) -> bool {
        !matches!(self, DetectorKind::Regex | DetectorKind::Keywords)
    }
}

/// Supporting keywords of the validated detectors when a rule file names none: English,
/// German, French, Spanish, Italian, Russian and Japanese.
fn default_keywords(kind: DetectorKind) -> &'static [&'static str] {
    match kind {
        DetectorKind::PaymentCard => &[
            "credit card",
            "debit card",
            "card number",
            "card no",
            "card",
            "cc#",
            "ccn",
            "visa",
            "mastercard",
            "master card",
            "amex",
            "american express",
            "diners club",
            "jcb",
            "unionpay",
            "maestro",
            "cvv",
            "cvc",
            "cvv2",
            "security code",
            "expiry",
            "expiration",
            "exp date",
            "valid thru",
            "kreditkarte",
            "kartennummer",
            "karte",
            "prüfziffer",
            "gültig bis",
            "carte bancaire",
            "carte de crédit",
            "numéro de carte",
            "carte",
            "tarjeta",
            "número de tarjeta",
            "carta di credito",
            "кредитная карта",
            "номер карты",
            "карта",
            "карты",
            "クレジットカード",
            "カード番号",
            "カード",
            "有効期限",
            "信用卡",
        ],
        DetectorKind::Iban => &[
            "iban",
            "bic",
            "swift",
            "bank account",
            "account number",
            "account no",
            "bank details",
            "kontonummer",
            "konto",
            "bankverbindung",
            "überweisung",
            "compte bancaire",
            "rib",
            "relevé d'identité bancaire",
            "cuenta",
            "conto corrente",
            "банковский счёт",
            "банковский счет",
            "счёт",
            "счет",
            "реквизиты",
            "口座",
            "口座番号",
            "銀行",
        ],
        DetectorKind::UsSsn => &[
            "ssn",
            "ssn#",
            "ss#",
            "ssa",
            "social security",
            "social security number",
            "social security no",
            "soc sec",
            "taxpayer id",
            "tin",
        ],
        DetectorKind::DeTaxId => &[
            "steuer-id",
            "steuerid",
            "steuer-idnr",
            "steueridentifikationsnummer",
            "steuerliche identifikationsnummer",
            "identifikationsnummer",
            "idnr",
            "id-nr",
            "steuernummer",
            "tax id",
            "tin",
            "tax identification number",
        ],
        DetectorKind::NlBsn => &[
            "bsn",
            "burgerservicenummer",
            "burgerservice nummer",
            "burger service nummer",
            "sofinummer",
            "sofi-nummer",
            "sofi nummer",
            "persoonsnummer",
            "persoonlijk nummer",
            "fiscaal nummer",
            "citizen service number",
        ],
        DetectorKind::EsDni => &[
            "dni",
            "d.n.i.",
            "nie",
            "n.i.e.",
            "nif",
            "documento nacional de identidad",
            "número de identidad",
            "numero de identidad",
            "número de identidad de extranjero",
            "número de identificación fiscal",
            "numero de identificacion fiscal",
            "documento de identidad",
            "carné de identidad",
        ],
        DetectorKind::FrNir => &[
            "nir",
            "numéro de sécurité sociale",
            "numero de securite sociale",
            "n° de sécurité sociale",
            "sécurité sociale",
            "securite sociale",
            "sécu",
            "n° sécu",
            "carte vitale",
            "numéro insee",
            "numéro d'inscription au répertoire",
            "nss",
        ],
        DetectorKind::Regex | DetectorKind::Keywords => &[],
    }
}

/// A detector as a rule file writes it (`[detectors.<name>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectorSpec {
    /// What it looks for.
    pub kind: DetectorKind,
    /// `regex`: the pattern (its place in the file names the line of its errors).
    #[serde(default)]
    pub pattern: Option<toml::Spanned<String>>,
    /// `keywords`: the words and phrases.
    #[serde(default)]
    pub words: Option<Vec<String>>,
    /// Supporting keywords that raise a match's confidence [default: the built-in list of a
    /// validated kind, none for `regex` and `keywords`].
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    /// How near supporting keywords must be, in characters [default: 300].
    #[serde(default)]
    pub proximity: Option<usize>,
    /// A match's confidence without supporting keywords, 1 to 100 [default: 65 for validated
    /// kinds and `keywords`, 40 for `regex`].
    #[serde(default)]
    pub confidence: Option<u8>,
    /// A match's confidence with supporting keywords nearby, 1 to 100 [default: 85 for
    /// validated kinds and `keywords`, 65 for `regex`].
    #[serde(default)]
    pub confidence_with_keywords: Option<u8>,
    /// `regex` and `keywords`: mask the excerpt [default: true for `regex`, false for
    /// `keywords`, whose words are the rule's own]. Validated kinds are always masked.
    #[serde(default)]
    pub mask: Option<bool>,
    /// `regex`: the compiled size limit in bytes [default: 1 MiB].
    #[serde(default)]
    pub size_limit: Option<usize>,
}

impl DetectorSpec {
    /// A built-in detector of `kind` with its defaults.
    pub(crate) fn builtin(kind: DetectorKind) -> Self {
        DetectorSpec {
            kind,
            pattern: None,
            words: None,
            keywords: None,
            proximity: None,
            confidence: None,
            confidence_with_keywords: None,
            mask: None,
            size_limit: None,
        }
    }
}

enum Finder {
    Card,
    Iban(IbanFinder),
    UsSsn,
    DeTaxId,
    NlBsn,
    /// The Spanish and French numbers: their candidates' pattern, compiled once per rule set.
    EsDni(Regex),
    FrNir(Regex),
    Regex {
        regex: Regex,
        mask: bool,
    },
    Words {
        words: Keywords,
        mask: bool,
    },
}

/// A compiled detector.
pub(crate) struct Detector {
    pub name: String,
    pub kind: DetectorKind,
    finder: Finder,
    supporting: Option<Keywords>,
    proximity: usize,
    alone: Confidence,
    with_keywords: Confidence,
}

/// One match of a detector in one text.
pub(crate) struct Detected {
    /// What was matched, normalized (digits only, upper case): matches of one value are one
    /// finding however often they occur. Never serialized.
    pub value: String,
    /// The card's brand, the IBAN's country.
    pub label: Option<String>,
    /// What evidence shows of it.
    pub excerpt: String,
    pub confidence: Confidence,
    pub keywords: Vec<NearbyKeyword>,
}

/// A match before its confidence is set.
struct Candidate {
    range: Range<usize>,
    value: String,
    label: Option<String>,
    excerpt: String,
    /// Written bare where it is usually printed in groups.
    bare: bool,
}

fn confidence(value: Option<u8>, default: Confidence, what: &str) -> Result<Confidence, String> {
    match value {
        None => Ok(default),
        Some(n @ 1..=100) => Ok(Confidence(n)),
        Some(n) => Err(format!("{what} = {n} is not from 1 to 100")),
    }
}

impl Detector {
    /// Compiles `spec` as detector `name`; the error says which key is wrong, with the place
    /// of the pattern when it is the pattern that does not compile.
    pub(crate) fn compile(
        name: &str,
        spec: &DetectorSpec,
    ) -> Result<Self, (Option<Range<usize>>, String)> {
        Self::compile_finder(name, spec, Self::finder(spec)?).map_err(|e| (None, e))
    }

    fn finder(spec: &DetectorSpec) -> Result<Finder, (Option<Range<usize>>, String)> {
        Self::check_keys(spec).map_err(|e| (None, e))?;
        if let (DetectorKind::Regex, Some(pattern)) = (spec.kind, &spec.pattern) {
            let regex = RegexBuilder::new(pattern.get_ref())
                .size_limit(spec.size_limit.unwrap_or(DEFAULT_REGEX_SIZE_LIMIT))
                .build()
                .map_err(|e| {
                    (
                        Some(pattern.span()),
                        format!("`pattern` does not compile: {e}"),
                    )
                })?;
            return Ok(Finder::Regex {
                regex,
                mask: spec.mask.unwrap_or(true),
            });
        }
        Self::plain_finder(spec).map_err(|e| (None, e))
    }

    /// Refuses keys that the detector's kind has no use for.
    fn check_keys(spec: &DetectorSpec) -> Result<(), String> {
        let only = |key: &str, set: bool, kinds: &str| {
            if set {
                Err(format!("`{key}` is only for {kinds} detectors"))
            } else {
                Ok(())
            }
        };
        let kind = spec.kind;
        if kind != DetectorKind::Regex {
            only("pattern", spec.pattern.is_some(), "`regex`")?;
            only("size_limit", spec.size_limit.is_some(), "`regex`")?;
        }
        if kind != DetectorKind::Keywords {
            only("words", spec.words.is_some(), "`keywords`")?;
        }
        if kind.validated() {
            only("mask", spec.mask.is_some(), "`regex` and `keywords`")?;
        }
        Ok(())
    }

    fn plain_finder(spec: &DetectorSpec) -> Result<Finder, String> {
        Ok(match spec.kind {
            DetectorKind::PaymentCard => Finder::Card,
            DetectorKind::Iban => Finder::Iban(IbanFinder::new()),
            DetectorKind::UsSsn => Finder::UsSsn,
            DetectorKind::DeTaxId => Finder::DeTaxId,
            DetectorKind::NlBsn => Finder::NlBsn,
            DetectorKind::EsDni => Finder::EsDni(
                Regex::new(national::ES_DNI_CANDIDATES).expect("the DNI pattern compiles"),
            ),
            DetectorKind::FrNir => Finder::FrNir(
                Regex::new(national::FR_NIR_CANDIDATES).expect("the NIR pattern compiles"),
            ),
            DetectorKind::Regex => return Err("a `regex` detector needs `pattern`".into()),
            DetectorKind::Keywords => {
                let words = spec
                    .words
                    .as_deref()
                    .filter(|w| !w.is_empty())
                    .ok_or("a `keywords` detector needs a non-empty `words` list")?;
                Finder::Words {
                    words: Keywords::new(words).map_err(|e| format!("`words`: {e}"))?,
                    mask: spec.mask.unwrap_or(false),
                }
            }
        })
    }

    fn compile_finder(name: &str, spec: &DetectorSpec, finder: Finder) -> Result<Self, String> {
        let kind = spec.kind;
        let keywords: Vec<String> = match &spec.keywords {
            Some(list) => list.clone(),
            None => default_keywords(kind)
                .iter()
                .map(|k| k.to_string())
                .collect(),
        };
        let supporting = if keywords.is_empty() {
            None
        } else {
            Some(Keywords::new(&keywords).map_err(|e| format!("`keywords`: {e}"))?)
        };
        let (alone, with_keywords) = if kind == DetectorKind::Regex {
            (Confidence::LOW, Confidence::MEDIUM)
        } else {
            (Confidence::MEDIUM, Confidence::HIGH)
        };
        Ok(Detector {
            name: name.to_string(),
            kind,
            finder,
            supporting,
            proximity: spec.proximity.unwrap_or(DEFAULT_PROXIMITY),
            alone: confidence(spec.confidence, alone, "confidence")?,
            with_keywords: confidence(
                spec.confidence_with_keywords,
                with_keywords,
                "confidence_with_keywords",
            )?,
        })
    }

    fn candidates(&self, text: &str) -> Vec<Candidate> {
        let numbers = |found: Vec<digits::Found<Layout>>, keep_end: usize| {
            found
                .into_iter()
                .map(|f| Candidate {
                    excerpt: mask(&text[f.range.clone()], 0, keep_end),
                    range: f.range,
                    value: f.digits,
                    label: None,
                    bare: f.verdict == Layout::Bare,
                })
                .collect()
        };
        let shown = |range: Range<usize>, masked: bool| {
            let matched = &text[range];
            let excerpt = if masked {
                mask(matched, 2, 2)
            } else {
                matched.to_string()
            };
            excerpt.chars().take(MAX_EXCERPT_CHARS).collect::<String>()
        };
        match &self.finder {
            Finder::Card => digits::scan(text, 5, 19, card::validate)
                .into_iter()
                .map(|f| Candidate {
                    excerpt: mask(&text[f.range.clone()], 4, 4),
                    range: f.range,
                    value: f.digits,
                    label: Some(f.verdict.name().to_string()),
                    bare: false,
                })
                .collect(),
            Finder::Iban(finder) => finder
                .find(text)
                .into_iter()
                .map(|(range, iban)| Candidate {
                    excerpt: mask(&text[range.clone()], 4, 2),
                    range,
                    label: Some(iban[..2].to_string()),
                    value: iban,
                    bare: false,
                })
                .collect(),
            Finder::UsSsn => numbers(digits::scan(text, 3, 9, national::us_ssn), 4),
            Finder::DeTaxId => numbers(digits::scan(text, 4, 11, national::de_tax_id), 2),
            Finder::NlBsn => numbers(digits::scan(text, 3, 9, national::nl_bsn), 2),
            Finder::EsDni(candidates) => {
                numbers(national::find(text, candidates, national::es_dni), 2)
            }
            Finder::FrNir(candidates) => {
                numbers(national::find(text, candidates, national::fr_nir), 2)
            }
            Finder::Regex { regex, mask } => regex
                .find_iter(text)
                .filter(|m| !m.is_empty())
                .map(|m| Candidate {
                    excerpt: shown(m.range(), *mask),
                    range: m.range(),
                    value: m.as_str().to_lowercase(),
                    label: None,
                    bare: false,
                })
                .collect(),
            Finder::Words { words, mask } => words
                .find(text)
                .into_iter()
                .map(|range| Candidate {
                    excerpt: shown(range.clone(), *mask),
                    value: text[range.clone()].to_lowercase(),
                    range,
                    label: None,
                    bare: false,
                })
                .collect(),
        }
    }

    /// Every match in `text`, with its confidence and the supporting keywords near it.
    pub(crate) fn detect(&self, text: &str) -> Vec<Detected> {
        let candidates = self.candidates(text);
        if candidates.is_empty() {
            return Vec::new();
        }
        let supporting = self
            .supporting
            .as_ref()
            .map(|k| k.find(text))
            .unwrap_or_default();
        candidates
            .into_iter()
            .map(|c| {
                let keywords = nearby(text, &c.range, &supporting, self.proximity);
                let mut confidence = if keywords.is_empty() {
                    self.alone
                } else {
                    self.with_keywords
                };
                if c.bare {
                    // One level lower: medium becomes low, high becomes medium.
                    confidence = Confidence(confidence.0.saturating_sub(20).max(1));
                }
                Detected {
                    value: c.value,
                    label: c.label,
                    excerpt: c.excerpt,
                    confidence,
                    keywords,
                }
            })
            .collect()
    }
}

/// The supporting keywords within `proximity` characters of `range`, nearest first.
/// `keywords` are sorted and do not overlap, so their ends are sorted too.
fn nearby(
    text: &str,
    range: &Range<usize>,
    keywords: &[Range<usize>],
    proximity: usize,
) -> Vec<NearbyKeyword> {
    // A character is at most four bytes: this byte window holds every candidate.
    let low = range.start.saturating_sub(proximity * 4);
    let high = range.end.saturating_add(proximity * 4);
    let first = keywords.partition_point(|k| k.end < low);
    let mut near: Vec<NearbyKeyword> = keywords[first..]
        .iter()
        .take_while(|k| k.start <= high)
        .filter_map(|k| {
            let distance = if k.end <= range.start {
                text[k.end..range.start].chars().count()
            } else if k.start >= range.end {
                text[range.end..k.start].chars().count()
            } else {
                0
            };
            (distance <= proximity).then(|| NearbyKeyword {
                keyword: text[k.clone()].to_string(),
                distance,
            })
        })
        .collect();
    near.sort_by_key(|k| k.distance);
    near.truncate(MAX_KEYWORDS_PER_MATCH);
    near
}
