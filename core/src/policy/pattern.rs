//! IAM wildcard patterns (`*`, `?`): matching an action or ARN, and deciding whether one
//! pattern covers everything another matches.

#[derive(Clone, Copy, Debug)]
enum Token {
    Literal(char),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, including none.
    AnyRun,
}

fn tokens(pattern: &str) -> Vec<Token> {
    pattern
        .chars()
        .map(|character| match character {
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            other => Token::Literal(other),
        })
        .collect()
}

/// Reports whether a pattern matches a text, where `*` and `?` in the text are ordinary
/// characters.
pub(super) fn pattern_matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let text: Vec<Token> = text.chars().map(Token::Literal).collect();
    covers(&tokens(pattern), &text, ignore_case)
}

pub(super) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Reports whether every text that `inner` matches is also matched by `outer`. Callers
/// compare actions without case and ARNs with case.
pub(super) fn pattern_covers(outer: &str, inner: &str, ignore_case: bool) -> bool {
    covers(&tokens(outer), &tokens(inner), ignore_case)
}

/// Reports whether `outer` matches every text that the `inner` tokens match. An inner
/// wildcard is covered only by an outer wildcard at least as broad (`*` covers `?` and
/// `*`, `?` covers `?`), so for literal-only `inner` this is ordinary glob matching.
fn covers(outer: &[Token], inner: &[Token], ignore_case: bool) -> bool {
    let literal_equal = |inner: Token, expected: char| match inner {
        Token::Literal(found) if ignore_case => found.eq_ignore_ascii_case(&expected),
        Token::Literal(found) => found == expected,
        Token::AnyChar | Token::AnyRun => false,
    };

    // reachable[j]: the outer tokens read so far can match the first j inner tokens.
    let mut reachable = vec![false; inner.len() + 1];
    reachable[0] = true;
    for token in outer {
        let mut next = vec![false; inner.len() + 1];
        match *token {
            Token::AnyRun => {
                let mut seen = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    seen |= reachable[j];
                    *slot = seen;
                }
            }
            Token::AnyChar => {
                for (j, inner_token) in inner.iter().enumerate() {
                    next[j + 1] = reachable[j] && !matches!(inner_token, Token::AnyRun);
                }
            }
            Token::Literal(expected) => {
                for (j, inner_token) in inner.iter().enumerate() {
                    next[j + 1] = reachable[j] && literal_equal(*inner_token, expected);
                }
            }
        }
        reachable = next;
    }
    reachable[inner.len()]
}

/// Reports whether a pattern matches every action (`*`, `*:*`).
pub(super) fn is_every_action(pattern: &str) -> bool {
    pattern_covers(pattern, "*:*", true)
}
