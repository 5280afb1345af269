using System.Globalization;
using System.Text;

namespace Bpfilter.Engine.Formats;

/// <summary>A ruleset file that cannot be read: the message names the file, line and column.</summary>
public sealed class RulesetFormatException : BpfilterException
{
    public RulesetFormatException(string file, long line, long column, string reason, Exception? inner = null)
        : base("RulesetSyntax", FailureCategory.ParserError, $"{Printable(file)}:{line}:{column}: {Printable(reason)}", inner)
    {
        File = file;
        Line = line;
        Column = column;
        Reason = Printable(reason);
    }

    public string File { get; }
    public long Line { get; }
    public long Column { get; }

    /// <summary>The message without the position.</summary>
    public string Reason { get; }

    /// <summary>
    /// The text with control characters, lone surrogates, byte order marks and bidirectional overrides written as
    /// \uXXXX: reasons quote the file's values (which escapes such as "\0" or "\e" can fill with anything), and a
    /// message must show what is there, not hide it or rearrange the terminal.
    /// </summary>
    internal static string Printable(string text)
    {
        int i = 0;
        while (i < text.Length && !Hidden(text, i)) i++;
        if (i == text.Length) return text;
        var result = new StringBuilder(text.Length + 16).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            if (Hidden(text, i)) result.Append("\\u").Append(((int)text[i]).ToString("X4", CultureInfo.InvariantCulture));
            else result.Append(text[i]);
        }
        return result.ToString();
    }

    private static bool Hidden(string text, int i)
    {
        var c = text[i];
        if (char.IsHighSurrogate(c)) return i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]);
        if (char.IsLowSurrogate(c)) return i == 0 || !char.IsHighSurrogate(text[i - 1]);
        return char.IsControl(c) || c is '\uFEFF' or '\u2028' or '\u2029' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069')
            or '\uFFFE' or '\uFFFF';
    }
}
