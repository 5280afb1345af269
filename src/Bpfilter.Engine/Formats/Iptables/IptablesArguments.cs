using System.Text;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>One argument of an iptables-save line, and the 1-based column it starts at.</summary>
public readonly record struct IptablesArgument(string Text, int Column);

/// <summary>
/// Splits iptables-save lines into arguments and joins arguments back, quoting as iptables-save does: arguments are
/// separated by spaces or tabs; a double quote opens a quoted part in which a backslash takes the next character
/// literally; outside quotes backslashes and single quotes are ordinary characters (as iptables-restore reads them).
/// </summary>
public static class IptablesArguments
{
    public static IReadOnlyList<IptablesArgument> Split(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var result = new List<IptablesArgument>();
        var current = new StringBuilder();
        int start = -1, quoteStart = 0;
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '\\' && i + 1 < line.Length) current.Append(line[++i]);
                else if (c == '"') quoted = false;
                else current.Append(c);
                continue;
            }
            if (c is ' ' or '\t')
            {
                if (start >= 0) result.Add(new(current.ToString(), start + 1));
                current.Clear();
                start = -1;
                continue;
            }
            if (start < 0) start = i;
            if (c == '"')
            {
                quoted = true;
                quoteStart = i;
            }
            else current.Append(c);
        }
        if (quoted)
            throw new IptablesRuleSpecException(result.Count, null, "the quote opened here is not closed") { Column = quoteStart + 1 };
        if (start >= 0) result.Add(new(current.ToString(), start + 1));
        return result;
    }

    /// <summary>The arguments as one line that <see cref="Split"/> (and iptables-restore) reads back into the same arguments.</summary>
    public static string Join(IEnumerable<string> arguments) => string.Join(' ', arguments.Select(Quote));

    /// <summary>
    /// The argument bare when it needs no quotes, else in double quotes with ", \ and ' escaped by a backslash, as
    /// iptables-save writes comments and log prefixes.
    /// </summary>
    public static string Quote(string argument) => argument.Length > 0 && argument.All(IsBare) ? argument : Quoted(argument);

    /// <summary>The argument in double quotes with ", \ and ' escaped by a backslash, needed or not.</summary>
    public static string Quoted(string argument)
    {
        var quoted = new StringBuilder(argument.Length + 2).Append('"');
        foreach (var c in argument)
        {
            if (c is '"' or '\\' or '\'') quoted.Append('\\');
            quoted.Append(c);
        }
        return quoted.Append('"').ToString();
    }

    private static bool IsBare(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '/' or ':' or ',' or '!' or '+' or '=' or '@' or '%';
}
