//! Parses filter tokens into an expression tree, by recursive descent.
//!
//! Grammar, from the loosest binding to the tightest:
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | condition
//! condition  := FIELD OP value | FIELD "in" "[" value ("," value)* "]"
//! value      := STRING | NUMBER | "true" | "false" | "null"
//! ```

use serde_json::Value;

use crate::error::FilterError;
use crate::filter::Expr;
use crate::filter::lexer::{CompareOp, Token, TokenKind};

/// Parses a whole token list, which must end with [`TokenKind::End`].
pub(crate) fn parse(tokens: &[Token]) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        tokens,
        position: 0,
    };
    let expr = parser.or()?;
    let token = parser.peek();
    if token.kind != TokenKind::End {
        return Err(token.error("expected `and`, `or` or the end of the filter"));
    }
    Ok(expr)
}

struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.position]
    }

    fn advance(&mut self) -> &Token {
        let token = &self.tokens[self.position];
        if token.kind != TokenKind::End {
            self.position += 1;
        }
        token
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and()?];
        while self.peek().kind == TokenKind::Or {
            self.advance();
            terms.push(self.and()?);
        }
        Ok(flatten(terms, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.unary()?];
        while self.peek().kind == TokenKind::And {
            self.advance();
            terms.push(self.unary()?);
        }
        Ok(flatten(terms, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let token = self.advance().clone();
        match token.kind {
            TokenKind::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            TokenKind::OpenParen => {
                let inner = self.or()?;
                self.expect(TokenKind::CloseParen, "expected `)`")?;
                Ok(inner)
            }
            TokenKind::Field(field) => self.condition(field),
            _ => Err(token.error("expected a field name, `not` or `(`")),
        }
    }

    fn condition(&mut self, field: String) -> Result<Expr, FilterError> {
        let token = self.advance().clone();
        match token.kind {
            TokenKind::Compare(op) => {
                let value_token = self.advance().clone();
                let value = value_of(&value_token)?;
                check_operand(op, &value, &value_token)?;
                Ok(Expr::Compare { field, op, value })
            }
            TokenKind::In => Ok(Expr::In {
                field,
                values: self.list()?,
            }),
            _ => Err(token.error(format!(
                "expected an operator after field `{field}`: =, !=, <, <=, >, >= or in"
            ))),
        }
    }

    fn list(&mut self) -> Result<Vec<Value>, FilterError> {
        self.expect(TokenKind::OpenBracket, "expected `[` to start the list")?;
        let mut values = Vec::new();
        loop {
            let token = self.advance().clone();
            values.push(value_of(&token)?);
            let separator = self.advance().clone();
            match separator.kind {
                TokenKind::Comma => continue,
                TokenKind::CloseBracket => return Ok(values),
                _ => return Err(separator.error("expected `,` or `]`")),
            }
        }
    }

    fn expect(&mut self, kind: TokenKind, message: &str) -> Result<(), FilterError> {
        let token = self.advance();
        if token.kind != kind {
            return Err(token.error(message));
        }
        Ok(())
    }
}

/// Returns the single term unchanged, or joins several with `join`.
fn flatten(mut terms: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    match terms.len() {
        1 => terms.pop().expect("one term"),
        _ => join(terms),
    }
}

/// Returns the JSON value a literal token denotes.
fn value_of(token: &Token) -> Result<Value, FilterError> {
    match &token.kind {
        TokenKind::String(text) => Ok(Value::String(text.clone())),
        TokenKind::Number(number) => Ok(Value::Number(number.clone())),
        TokenKind::Bool(flag) => Ok(Value::Bool(*flag)),
        TokenKind::Null => Ok(Value::Null),
        _ => Err(token.error("expected a value: a quoted string, a number, true, false or null")),
    }
}

/// Rejects a range operator on a value that has no order.
fn check_operand(op: CompareOp, value: &Value, token: &Token) -> Result<(), FilterError> {
    let ordered = matches!(value, Value::Number(_) | Value::String(_));
    if matches!(op, CompareOp::Eq | CompareOp::Ne) || ordered {
        return Ok(());
    }
    Err(token.error(format!(
        "`{}` compares numbers or strings, not {}",
        op.as_str(),
        token.text
    )))
}
