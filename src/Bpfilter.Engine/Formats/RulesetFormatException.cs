namespace Bpfilter.Engine.Formats;

/// <summary>A ruleset file that cannot be read: the message names the file, line and column.</summary>
public sealed class RulesetFormatException : BpfilterException
{
    public RulesetFormatException(string file, long line, long column, string reason, Exception? inner = null)
        : base("RulesetSyntax", FailureCategory.ParserError, $"{file}:{line}:{column}: {reason}", inner)
    {
        File = file;
        Line = line;
        Column = column;
        Reason = reason;
    }

    public string File { get; }
    public long Line { get; }
    public long Column { get; }

    /// <summary>The message without the position.</summary>
    public string Reason { get; }
}
