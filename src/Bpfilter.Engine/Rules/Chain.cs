namespace Bpfilter.Engine.Rules;

/// <summary>
/// An ordered list of rules attached at one hook. Rules are tried in order, the first that matches decides;
/// a packet that no rule matches gets the policy.
/// </summary>
public sealed record Chain
{
    public Chain(string name, Hook hook, string interfaceName, Verdict policy, IReadOnlyList<Rule> rules, XdpMode mode = XdpMode.Native)
    {
        Names.CheckChainName(name);
        Names.CheckInterfaceName(interfaceName);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < rules.Count; i++)
        {
            if (rules[i].Name is { } ruleName && !seen.Add(ruleName))
                throw new RulesetValidationException($"chain '{name}' has two rules named '{ruleName}'", "name", i);
        }
        Name = name;
        Hook = hook;
        Interface = interfaceName;
        Policy = policy;
        Rules = rules.ToArray();
        Mode = mode;
    }

    public string Name { get; }
    public Hook Hook { get; }
    public string Interface { get; }
    public XdpMode Mode { get; }
    public Verdict Policy { get; }
    public IReadOnlyList<Rule> Rules { get; }
}
