namespace Bpfilter.Engine.Formats;

/// <summary>
/// The text of a ruleset on its way into YamlDotNet's scanner, character by character: refuses more than
/// <see cref="YamlRulesetReader.MaxFileBytes"/> characters, refuses characters YAML does not allow (NUL and the other
/// control characters, a byte order mark after the start, a lone surrogate, U+FFFE and U+FFFF: YamlDotNet takes some
/// of them silently, and NUL ends its input early), drops a byte order mark at the start, and knows the line and
/// column it has reached, for errors that come from the input rather than from the YAML.
/// </summary>
internal sealed class RulesetTextReader(TextReader inner, string file) : TextReader
{
    private long _count;
    private bool _started;
    private bool _afterCr;
    private (long Line, long Column, char Char)? _pendingHigh;
    private bool _inIndent = true;
    private readonly (long Line, long Column)[] _indentTabs = new (long, long)[16];
    private int _indentTabCount;

    /// <summary>The line of the next character.</summary>
    public long Line { get; private set; } = 1;

    /// <summary>The column of the next character.</summary>
    public long Column { get; private set; } = 1;

    public override int Read()
    {
        Span<char> one = stackalloc char[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

    public override int Read(Span<char> buffer)
    {
        while (true)
        {
            if (buffer.IsEmpty) return 0;
            int n = inner.Read(buffer);
            if (n == 0)
            {
                if (_pendingHigh is { } high) throw LoneSurrogate(high.Line, high.Column, high.Char);
                return 0;
            }
            var chars = buffer[..n];
            if (!_started)
            {
                _started = true;
                if (chars[0] == '\uFEFF')
                {
                    chars[1..].CopyTo(chars);
                    chars = chars[..^1];
                    if (chars.IsEmpty) continue;
                }
            }
            foreach (var c in chars) Check(c);
            return chars.Length;
        }
    }

    private void Check(char c)
    {
        if (++_count > YamlRulesetReader.MaxFileBytes)
            throw Error($"the ruleset is longer than {YamlRulesetReader.MaxFileBytes} characters, the limit for a ruleset (16 MiB); "
                + "see about_Bpfilter_Limits");
        if (_pendingHigh is { } high)
        {
            if (!char.IsLowSurrogate(c)) throw LoneSurrogate(high.Line, high.Column, high.Char);
            _pendingHigh = null;
            Column++;
            return;
        }
        switch (c)
        {
            case '\t':
                if (_inIndent) _indentTabs[_indentTabCount++ % _indentTabs.Length] = (Line, Column);
                _afterCr = false;
                Column++;
                return;
            case ' ':
                _afterCr = false;
                Column++;
                return;
            case '\r':
                (Line, Column, _afterCr, _inIndent) = (Line + 1, 1, true, true);
                return;
            case '\n':
                if (!_afterCr) (Line, Column) = (Line + 1, 1);
                _afterCr = false;
                _inIndent = true;
                return;
            case '\u0085' or '\u2028' or '\u2029':
                (Line, Column, _afterCr, _inIndent) = (Line + 1, 1, false, true);
                return;
            case '\0':
                throw Error("the text holds a NUL character (U+0000), which YAML does not allow");
            case < '\u0020' or (>= '\u007F' and <= '\u009F'):
                throw Error($"the text holds the control character U+{(int)c:X4}, which YAML does not allow");
            case '\uFEFF':
                throw Error("a byte order mark (U+FEFF) may only start the file, not stand inside it");
            case '\uFFFE' or '\uFFFF':
                throw Error($"U+{(int)c:X4} is not a character; YAML does not allow it");
            case >= '\uD800' and <= '\uDBFF':
                _pendingHigh = (Line, Column, c);
                _inIndent = false;
                _afterCr = false;
                Column++;
                return;
            case >= '\uDC00' and <= '\uDFFF':
                throw LoneSurrogate(Line, Column, c);
        }
        _afterCr = false;
        _inIndent = false;
        Column++;
    }

    /// <summary>
    /// The first tab in the indentation of a line at or after a position, among the last few read: YamlDotNet reports
    /// some tab errors at the start of the enclosing mapping, which can be far above the tab.
    /// </summary>
    public (long Line, long Column)? IndentTabAtOrAfter(long line, long column)
    {
        (long Line, long Column)? first = null;
        for (int i = Math.Max(0, _indentTabCount - _indentTabs.Length); i < _indentTabCount; i++)
        {
            var tab = _indentTabs[i % _indentTabs.Length];
            if ((tab.Line, tab.Column).CompareTo((line, column)) >= 0 && (first is null || tab.CompareTo(first.Value) < 0)) first = tab;
        }
        return first;
    }

    private RulesetFormatException LoneSurrogate(long line, long column, char c) =>
        new(file, line, column, $"the text holds U+{(int)c:X4}, half of a UTF-16 surrogate pair without its other half");

    private RulesetFormatException Error(string reason) => new(file, Line, Column, reason);

    /// <summary>The line and column just after <paramref name="text"/>, counting line breaks as YAML does.</summary>
    public static (long Line, long Column) PositionAfter(ReadOnlySpan<char> text)
    {
        long line = 1, column = 1;
        bool afterCr = false;
        foreach (var c in text)
        {
            switch (c)
            {
                case '\r':
                    (line, column, afterCr) = (line + 1, 1, true);
                    continue;
                case '\n':
                    if (!afterCr) (line, column) = (line + 1, 1);
                    afterCr = false;
                    continue;
                case '\u0085' or '\u2028' or '\u2029':
                    (line, column, afterCr) = (line + 1, 1, false);
                    continue;
            }
            afterCr = false;
            column++;
        }
        return (line, column);
    }
}
