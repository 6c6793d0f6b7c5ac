//! Splits a filter expression into tokens, each with the column it starts at.

use serde_json::Number;

use crate::error::FilterError;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompareOp {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CompareOp {
    /// Returns the operator as written in a filter.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// The kind of a token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    /// A payload field name.
    Field(String),
    /// A quoted string, unescaped.
    String(String),
    /// A number.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `not`.
    Not,
    /// `in`.
    In,
    /// A comparison operator.
    Compare(CompareOp),
    /// `(`.
    OpenParen,
    /// `)`.
    CloseParen,
    /// `[`.
    OpenBracket,
    /// `]`.
    CloseBracket,
    /// `,`.
    Comma,
    /// The end of the expression.
    End,
}

/// A token with its position and its text as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Column of the first character, counted in characters from 1.
    pub(crate) column: usize,
    /// The token as written, or `end of filter`.
    pub(crate) text: String,
}

impl Token {
    /// Builds the error for an unexpected token.
    pub(crate) fn error(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            column: self.column,
            token: self.text.clone(),
            message: message.into(),
        }
    }
}

/// Splits `source` into tokens, ending with [`TokenKind::End`].
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut position = 0;
    while position < chars.len() {
        if chars[position].is_whitespace() {
            position += 1;
            continue;
        }
        let (kind, end) = read_token(&chars, position)?;
        tokens.push(Token {
            kind,
            column: position + 1,
            text: chars[position..end].iter().collect(),
        });
        position = end;
    }
    tokens.push(Token {
        kind: TokenKind::End,
        column: chars.len() + 1,
        text: "end of filter".to_string(),
    });
    Ok(tokens)
}

/// Reads the token that starts at `start` and returns it with the position after it.
fn read_token(chars: &[char], start: usize) -> Result<(TokenKind, usize), FilterError> {
    let first = chars[start];
    let next = chars.get(start + 1).copied();
    let single = |kind| Ok((kind, start + 1));
    let double = |kind| Ok((kind, start + 2));
    match (first, next) {
        ('(', _) => single(TokenKind::OpenParen),
        (')', _) => single(TokenKind::CloseParen),
        ('[', _) => single(TokenKind::OpenBracket),
        (']', _) => single(TokenKind::CloseBracket),
        (',', _) => single(TokenKind::Comma),
        ('=', Some('=')) => double(TokenKind::Compare(CompareOp::Eq)),
        ('=', _) => single(TokenKind::Compare(CompareOp::Eq)),
        ('!', Some('=')) => double(TokenKind::Compare(CompareOp::Ne)),
        ('<', Some('=')) => double(TokenKind::Compare(CompareOp::Le)),
        ('<', _) => single(TokenKind::Compare(CompareOp::Lt)),
        ('>', Some('=')) => double(TokenKind::Compare(CompareOp::Ge)),
        ('>', _) => single(TokenKind::Compare(CompareOp::Gt)),
        ('"' | '\'', _) => read_string(chars, start),
        (c, _) if c == '-' || c.is_ascii_digit() => read_number(chars, start),
        (c, _) if c.is_alphabetic() || c == '_' => Ok(read_word(chars, start)),
        _ => Err(FilterError {
            column: start + 1,
            token: first.to_string(),
            message: "unexpected character; expected a field, a value, an operator or a bracket"
                .to_string(),
        }),
    }
}

/// Reads a keyword or a field name: a letter or `_`, then letters, digits, `_`, `-` or `.`.
fn read_word(chars: &[char], start: usize) -> (TokenKind, usize) {
    let is_word = |c: &char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let len = chars[start..].iter().take_while(|c| is_word(c)).count();
    let word: String = chars[start..start + len].iter().collect();
    let kind = match word.to_ascii_lowercase().as_str() {
        "and" => TokenKind::And,
        "or" => TokenKind::Or,
        "not" => TokenKind::Not,
        "in" => TokenKind::In,
        "true" => TokenKind::Bool(true),
        "false" => TokenKind::Bool(false),
        "null" => TokenKind::Null,
        _ => TokenKind::Field(word),
    };
    (kind, start + len)
}

/// Reads a number in JSON's syntax, for example `-3`, `2020` or `0.5e-3`.
fn read_number(chars: &[char], start: usize) -> Result<(TokenKind, usize), FilterError> {
    let is_number = |c: &char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
    let len = chars[start..].iter().take_while(|c| is_number(c)).count();
    let text: String = chars[start..start + len].iter().collect();
    let number = serde_json::from_str::<Number>(&text).map_err(|_| FilterError {
        column: start + 1,
        token: text.clone(),
        message: "invalid number; expected digits with an optional sign, fraction and exponent"
            .to_string(),
    })?;
    Ok((TokenKind::Number(number), start + len))
}

/// Reads a string in double or single quotes, with `\\`, `\"`, `\'`, `\n` and `\t` escapes.
fn read_string(chars: &[char], start: usize) -> Result<(TokenKind, usize), FilterError> {
    let quote = chars[start];
    let mut value = String::new();
    let mut position = start + 1;
    while let Some(&c) = chars.get(position) {
        match c {
            c if c == quote => return Ok((TokenKind::String(value), position + 1)),
            '\\' => {
                let escaped = chars.get(position + 1).copied();
                value.push(unescape(escaped).ok_or_else(|| {
                    FilterError {
                        column: position + 1,
                        token: chars[position..(position + 2).min(chars.len())]
                            .iter()
                            .collect(),
                        message: "invalid escape; expected \\\\, \\\", \\', \\n or \\t".to_string(),
                    }
                })?);
                position += 2;
            }
            c => {
                value.push(c);
                position += 1;
            }
        }
    }
    Err(FilterError {
        column: start + 1,
        token: chars[start..].iter().collect(),
        message: format!("unterminated string; expected a closing {quote}"),
    })
}

fn unescape(escaped: Option<char>) -> Option<char> {
    match escaped? {
        '\\' => Some('\\'),
        '"' => Some('"'),
        '\'' => Some('\''),
        'n' => Some('\n'),
        't' => Some('\t'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn tokens_of_a_full_expression() {
        let kinds = kinds("year>=2020 AND tag in ['a', \"b\\\"\"]");
        assert_eq!(
            kinds,
            vec![
                TokenKind::Field("year".to_string()),
                TokenKind::Compare(CompareOp::Ge),
                TokenKind::Number(2020.into()),
                TokenKind::And,
                TokenKind::Field("tag".to_string()),
                TokenKind::In,
                TokenKind::OpenBracket,
                TokenKind::String("a".to_string()),
                TokenKind::Comma,
                TokenKind::String("b\"".to_string()),
                TokenKind::CloseBracket,
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        let tokens = tokenize("é = 1").unwrap();
        let columns: Vec<usize> = tokens.iter().map(|token| token.column).collect();
        assert_eq!(columns, vec![1, 3, 5, 6]);
    }

    #[test]
    fn lexical_errors_name_column_and_token() {
        let error = tokenize("a = \"open").unwrap_err();
        assert_eq!((error.column, error.token.as_str()), (5, "\"open"));
        let error = tokenize("a = 1.2.3").unwrap_err();
        assert_eq!((error.column, error.token.as_str()), (5, "1.2.3"));
        let error = tokenize("a ~ 1").unwrap_err();
        assert_eq!((error.column, error.token.as_str()), (3, "~"));
    }
}
