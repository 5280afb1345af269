namespace Bpfilter.Engine.Rules;

/// <summary>
/// A chain with no hook: rules that run only when a rule of another chain jumps or goes to it. A packet that
/// reaches its end returns to the rule after the jump, as in iptables.
/// </summary>
public sealed record UserChain
{
    public UserChain(string name, IReadOnlyList<Rule> rules)
    {
        Names.CheckChainName(name);
        Chain.CheckRuleNames(name, rules);
        Name = name;
        Rules = new ValueList<Rule>(rules);
    }

    public string Name { get; }
    public ValueList<Rule> Rules { get; }
}
