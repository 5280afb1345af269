namespace Bpfilter.Engine.Rules;

/// <summary>A deployable unit: a name (the deployment name) and its chains. A ruleset that exists is valid.</summary>
public sealed record Ruleset
{
    public Ruleset(string name, IReadOnlyList<Chain> chains, string? sourcePath = null)
    {
        Names.CheckDeploymentName(name);
        if (chains.Count == 0) throw new RulesetValidationException($"ruleset '{name}' has no chains", "chains");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chain in chains)
        {
            if (!seen.Add(chain.Name)) throw new RulesetValidationException($"ruleset '{name}' has two chains named '{chain.Name}'", "chains");
        }
        var clash = chains.GroupBy(c => (c.Hook, c.Interface, c.Cgroup, c.Priority, c.NetworkNamespace)).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
            throw new RulesetValidationException(
                $"chains {string.Join(" and ", clash.Select(c => $"'{c.Name}'"))} both attach at {clash.First().AttachPoint}: "
                + "put their rules in one chain", "chains");
        Name = name;
        Chains = chains.ToArray();
        SourcePath = sourcePath;
    }

    public string Name { get; }
    public IReadOnlyList<Chain> Chains { get; }

    /// <summary>The file the ruleset was read from, if any.</summary>
    public string? SourcePath { get; }
}
