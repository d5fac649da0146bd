// synchronous_standby_names, parsed the way PostgreSQL parses it
// (src/backend/replication/syncrep_scanner.l and syncrep_gram.y):
//
//   standby_config: standby_list                       -- FIRST 1
//                 | NUM '(' standby_list ')'           -- FIRST NUM
//                 | ANY NUM '(' standby_list ')'
//                 | FIRST NUM '(' standby_list ')'
//   standby_list:   standby_name (',' standby_name)*
//   standby_name:   NAME | NUM
//
// Scanner: blanks are [ \t\n\r\f\v]; ANY and FIRST match case-insensitively
// and only as whole words ("anyone" is a name); an identifier is
// [A-Za-z\200-\377_][A-Za-z\200-\377_0-9$]* and keeps its case (it is NOT
// downcased); NUM is [0-9]+; "*" is a name; a double-quoted name keeps
// everything inside, "" standing for one '"'. Anything else is a syntax
// error. check_synchronous_standby_names() then rejects a count below 1.
// syncrep.c compares names with application_name by pg_strcasecmp.
#include "config/sync_names.h"

#include <climits>

#include "core/error.h"

namespace pgfo {

namespace {

enum class Tok { Name, Num, Any, First, Comma, Open, Close, Junk, End };

struct Token {
    Tok kind = Tok::End;
    std::string text; // the name (quotes removed) or the digits
    size_t pos = 0;   // where it starts in the input
    std::string raw;  // as written, for error messages
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) {
    auto u = static_cast<unsigned char>(c);
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || u >= 0x80;
}
bool is_ident_cont(char c) { return is_ident_start(c) || is_digit(c) || c == '$'; }

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

// pg_strcasecmp() equality, ASCII case folding.
bool equal_ci(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

[[noreturn]] void syntax_error(std::string_view input, const std::string &what) {
    throw Error(PGFO_ERR_CONFIG, "invalid synchronous_standby_names \"" + std::string(input) +
                                     "\": " + what);
}

class Scanner {
public:
    explicit Scanner(std::string_view input) : in_(input) {}

    Token next() {
        while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_;
        Token tok;
        tok.pos = pos_;
        if (pos_ >= in_.size()) return tok; // Tok::End
        char c = in_[pos_];
        if (c == '"') return quoted(tok);
        if (is_ident_start(c)) return identifier(tok);
        if (is_digit(c)) return number(tok);
        ++pos_;
        tok.raw = std::string(1, c);
        tok.text = tok.raw;
        switch (c) {
        case '*': tok.kind = Tok::Name; break;
        case ',': tok.kind = Tok::Comma; break;
        case '(': tok.kind = Tok::Open; break;
        case ')': tok.kind = Tok::Close; break;
        default: tok.kind = Tok::Junk; break;
        }
        return tok;
    }

private:
    Token quoted(Token tok) {
        size_t i = pos_ + 1;
        for (;;) {
            if (i >= in_.size())
                syntax_error(in_, "unterminated quoted name starting at position " +
                                      std::to_string(tok.pos + 1));
            if (in_[i] == '"') {
                if (i + 1 < in_.size() && in_[i + 1] == '"') { // "" inside: one '"'
                    tok.text += '"';
                    i += 2;
                    continue;
                }
                ++i;
                break;
            }
            tok.text += in_[i++];
        }
        tok.kind = Tok::Name;
        tok.raw = std::string(in_.substr(pos_, i - pos_));
        pos_ = i;
        return tok;
    }

    Token identifier(Token tok) {
        size_t i = pos_;
        while (i < in_.size() && is_ident_cont(in_[i])) ++i;
        tok.text = tok.raw = std::string(in_.substr(pos_, i - pos_));
        pos_ = i;
        if (equal_ci(tok.text, "any")) tok.kind = Tok::Any;
        else if (equal_ci(tok.text, "first")) tok.kind = Tok::First;
        else tok.kind = Tok::Name;
        return tok;
    }

    Token number(Token tok) {
        size_t i = pos_;
        while (i < in_.size() && is_digit(in_[i])) ++i;
        tok.text = tok.raw = std::string(in_.substr(pos_, i - pos_));
        tok.kind = Tok::Num;
        pos_ = i;
        return tok;
    }

    std::string_view in_;
    size_t pos_ = 0;
};

class Parser {
public:
    explicit Parser(std::string_view input) : in_(input), scanner_(input) {
        tok_ = scanner_.next();
        ahead_ = scanner_.next();
    }

    SyncSpec parse() {
        SyncSpec spec;
        if (tok_.kind == Tok::Any || tok_.kind == Tok::First) {
            spec.method = tok_.kind == Tok::Any ? SyncSpec::Method::Any : SyncSpec::Method::First;
            advance();
            if (tok_.kind != Tok::Num) error_here();
            spec.num = count();
            parenthesized_list(spec.names);
        } else if (tok_.kind == Tok::Num && ahead_.kind == Tok::Open) {
            spec.method = SyncSpec::Method::First; // "2 (a, b)" is priority, like FIRST 2
            spec.num = count();
            parenthesized_list(spec.names);
        } else {
            spec.method = SyncSpec::Method::List;
            spec.num = 1;
            list(spec.names);
        }
        if (tok_.kind != Tok::End) error_here();
        return spec;
    }

private:
    void advance() {
        tok_ = std::move(ahead_);
        ahead_ = scanner_.next();
    }

    [[noreturn]] void error_here() const {
        if (tok_.kind == Tok::End) syntax_error(in_, "syntax error at end of input");
        syntax_error(in_, "syntax error at or near \"" + tok_.raw + "\" (position " +
                              std::to_string(tok_.pos + 1) + ")");
    }

    // The NUM of "n (...)": check_synchronous_standby_names wants at least 1.
    int count() {
        const std::string &digits = tok_.text;
        long long value = 0;
        for (char c : digits) {
            value = value * 10 + (c - '0');
            if (value > INT_MAX)
                syntax_error(in_, "number of synchronous standbys " + digits + " is too large");
        }
        if (value < 1)
            syntax_error(in_, "number of synchronous standbys (" + digits +
                                  ") must be greater than zero");
        advance();
        return static_cast<int>(value);
    }

    void parenthesized_list(std::vector<std::string> &names) {
        if (tok_.kind != Tok::Open) error_here();
        advance();
        list(names);
        if (tok_.kind != Tok::Close) error_here();
        advance();
    }

    void list(std::vector<std::string> &names) {
        names.push_back(name());
        while (tok_.kind == Tok::Comma) {
            advance();
            names.push_back(name());
        }
    }

    std::string name() {
        if (tok_.kind != Tok::Name && tok_.kind != Tok::Num) error_here();
        std::string text = tok_.text;
        advance();
        return text;
    }

    std::string_view in_;
    Scanner scanner_;
    Token tok_;
    Token ahead_;
};

// True when the name reads back as itself without quotes.
bool is_plain_name(const std::string &name) {
    if (name == "*") return true;
    if (name.empty() || !is_ident_start(name[0]) || static_cast<unsigned char>(name[0]) >= 0x80)
        return false;
    for (char c : name)
        if (!is_ident_cont(c) || static_cast<unsigned char>(c) >= 0x80) return false;
    return !equal_ci(name, "any") && !equal_ci(name, "first");
}

std::string quote_name(const std::string &name) {
    if (is_plain_name(name)) return name;
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string join_names(const std::vector<std::string> &names) {
    std::string out;
    for (const std::string &name : names) {
        if (!out.empty()) out += ", ";
        out += quote_name(name);
    }
    return out;
}

bool is_available(const std::string &name, const std::vector<std::string> &available) {
    if (name == "*") return !available.empty();
    for (const std::string &a : available)
        if (equal_ci(name, a)) return true;
    return false;
}

} // namespace

SyncSpec parse_sync_names(std::string_view text) {
    if (text.empty()) return SyncSpec{}; // PostgreSQL parses only a non-empty value
    return Parser(text).parse();
}

// A spec without names (or Method::None) is "": asynchronous replication.
std::string format_sync_names(const SyncSpec &spec) {
    if (spec.method == SyncSpec::Method::None || spec.names.empty()) return "";
    std::string list = join_names(spec.names);
    int num = spec.num < 1 ? 1 : spec.num;
    switch (spec.method) {
    case SyncSpec::Method::List: return list;
    case SyncSpec::Method::First: return "FIRST " + std::to_string(num) + " (" + list + ")";
    case SyncSpec::Method::Any: return "ANY " + std::to_string(num) + " (" + list + ")";
    case SyncSpec::Method::None: break;
    }
    return "";
}

std::string restrict_sync_names(std::string_view current,
                                const std::vector<std::string> &available) {
    SyncSpec spec = parse_sync_names(current);
    std::vector<std::string> kept;
    for (const std::string &name : spec.names)
        if (is_available(name, available)) kept.push_back(name);
    if (kept.empty()) return "";
    spec.names = std::move(kept);
    if (spec.method == SyncSpec::Method::List) spec.num = 1;
    else if (spec.num > static_cast<int>(spec.names.size()))
        spec.num = static_cast<int>(spec.names.size());
    return format_sync_names(spec);
}

std::vector<std::string> sync_names_listed(std::string_view current) {
    std::vector<std::string> names;
    for (std::string &name : parse_sync_names(current).names)
        if (name != "*") names.push_back(std::move(name));
    return names;
}

} // namespace pgfo
