namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// An iptables rule specification that cannot be read: the argument it failed at (0-based), the option it was
/// reading and why. Readers of files turn it into a <see cref="RulesetFormatException"/> with the line and column.
/// </summary>
public sealed class IptablesRuleSpecException : BpfilterException
{
    public IptablesRuleSpecException(int argumentIndex, string? option, string reason)
        : base("IptablesRuleInvalid", FailureCategory.InvalidArgument, $"argument {argumentIndex + 1}{(option is null ? "" : $" ({option})")}: {reason}")
    {
        ArgumentIndex = argumentIndex;
        Option = option;
        Reason = reason;
    }

    /// <summary>The 0-based position of the argument the error is about.</summary>
    public int ArgumentIndex { get; }

    /// <summary>The option being read ("--dport", "-j"), or null when the argument is not an option's.</summary>
    public string? Option { get; }

    /// <summary>The message without the position.</summary>
    public string Reason { get; }

    /// <summary>The 1-based column in the line, when the error comes from splitting a line (an unclosed quote).</summary>
    public int? Column { get; init; }
}
