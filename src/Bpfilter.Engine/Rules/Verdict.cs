namespace Bpfilter.Engine.Rules;

/// <summary>What happens to a packet that a rule matches, or that reaches the end of a chain (the policy).</summary>
public enum Verdict
{
    Accept,
    Drop,
}
