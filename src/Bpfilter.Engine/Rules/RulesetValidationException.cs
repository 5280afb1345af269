namespace Bpfilter.Engine.Rules;

/// <summary>A value or combination that the rules model refuses. Readers add the file position.</summary>
public sealed class RulesetValidationException : BpfilterException
{
    public RulesetValidationException(string message, string? field = null, int? ruleIndex = null, string? chain = null)
        : base("RulesetInvalid", FailureCategory.InvalidData, message)
    {
        Field = field;
        RuleIndex = ruleIndex;
        Chain = chain;
    }

    /// <summary>The key the message is about (for example "destination-port"), when there is one.</summary>
    public string? Field { get; }

    /// <summary>The 0-based position of the offending rule in its chain, when the error is about one rule.</summary>
    public int? RuleIndex { get; }

    /// <summary>The chain the error is about (with <see cref="RuleIndex"/>, the chain of that rule), when a ruleset names it.</summary>
    public string? Chain { get; }
}
