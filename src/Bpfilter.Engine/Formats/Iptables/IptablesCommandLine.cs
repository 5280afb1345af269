using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// Splits a line of a shell script of iptables commands into words as the shell would, and joins words back. What
/// the shell would expand or redirect ($, `, |, &amp;, &lt;, &gt;, parentheses, globs) is refused rather than taken
/// literally, since running the script in a shell would not mean the same.
/// </summary>
public static class IptablesCommandLine
{
    /// <summary>
    /// The commands of one line: separated by unquoted ";", each its words. Blanks separate words; '...' keeps
    /// everything literally; "..." keeps everything but \" \\ \$ \` (backslash escapes); outside quotes a backslash
    /// escapes the next character; an unquoted '#' at the start of a word comments out the rest of the line.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<string>> Split(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var commands = new List<IReadOnlyList<string>>();
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < line.Length; i++)
        {
            var c = line[i];
            switch (c)
            {
                case ' ' or '\t' or '\r':
                    EndWord();
                    continue;
                case ';':
                    EndWord();
                    EndCommand();
                    continue;
                case '#' when !inWord:
                    i = line.Length;
                    continue;
                case '\'':
                    int close = line.IndexOf('\'', i + 1);
                    if (close < 0) throw Invalid($"column {i + 1}: the single quote opened here is not closed");
                    word.Append(line, i + 1, close - i - 1);
                    inWord = true;
                    i = close;
                    continue;
                case '"':
                    int start = i;
                    for (i++; ; i++)
                    {
                        if (i >= line.Length) throw Invalid($"column {start + 1}: the double quote opened here is not closed");
                        if (line[i] == '"') break;
                        if (line[i] is '$' or '`') throw Invalid($"column {i + 1}: '{line[i]}' inside double quotes would be expanded by the shell; write it in single quotes");
                        if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\' or '$' or '`') i++;
                        word.Append(line[i]);
                    }
                    inWord = true;
                    continue;
                case '\\':
                    if (i + 1 < line.Length) word.Append(line[++i]);
                    inWord = true;
                    continue;
                case '$' or '`' or '|' or '&' or '<' or '>' or '(' or ')' or '*' or '?' or '[' or '{' or '}' or '~' when !(c == '~' && inWord):
                    throw Invalid($"column {i + 1}: '{c}' is shell syntax (expansion, a pipe, a redirection or a pattern), which Bpfilter does not run; quote it to mean the character itself");
                default:
                    word.Append(c);
                    inWord = true;
                    continue;
            }
        }
        EndWord();
        EndCommand();
        return commands;

        void EndWord()
        {
            if (!inWord) return;
            words.Add(word.ToString());
            word.Clear();
            inWord = false;
        }

        void EndCommand()
        {
            if (words.Count > 0) commands.Add(words);
            words = [];
        }
    }

    /// <summary>The words as one line that <see cref="Split"/> (and a shell) reads back into the same words.</summary>
    public static string Join(IEnumerable<string> words) => string.Join(' ', words.Select(Quote));

    private static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or ',' or '=' or '+' or '@' or '%' or '!' or '^')
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>The family of a leading command name: iptables (IPv4) or ip6tables (IPv6), with a path or -nft/-legacy; null otherwise.</summary>
    public static IpFamily? ToolFamily(string word)
    {
        var name = word[(word.LastIndexOf('/') + 1)..];
        return name switch
        {
            "iptables" or "iptables-nft" or "iptables-legacy" or "bpf-iptables" => IpFamily.Ipv4,
            "ip6tables" or "ip6tables-nft" or "ip6tables-legacy" or "bpf-ip6tables" => IpFamily.Ipv6,
            _ => null,
        };
    }

    private static BpfilterException Invalid(string reason) => new("IptablesCommandInvalid", FailureCategory.InvalidArgument, reason);
}
