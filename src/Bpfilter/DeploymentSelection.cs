using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter;

/// <summary>Expands -Name patterns against the deployed names; a plain name that matches nothing is a not-found error.</summary>
internal static class DeploymentSelection
{
    public static IEnumerable<string> Select(Cmdlet cmdlet, IReadOnlyList<string>? patterns)
    {
        var deployed = Deployments.Names();
        if (patterns is null || patterns.Count == 0) return deployed;
        var selected = new List<string>();
        foreach (var pattern in patterns)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(pattern))
            {
                if (deployed.Contains(pattern)) selected.Add(pattern);
                else cmdlet.WriteError(NotFound(pattern, deployed));
                continue;
            }
            var wildcard = new WildcardPattern(pattern, WildcardOptions.IgnoreCase);
            selected.AddRange(deployed.Where(wildcard.IsMatch));
        }
        return selected.Distinct();
    }

    private static ErrorRecord NotFound(string name, IReadOnlyList<string> deployed) =>
        new(new ItemNotFoundException($"no deployment is named '{name}'" + (deployed.Count > 0 ? $" (deployed: {string.Join(", ", deployed)})" : " (nothing is deployed)")),
            "Bpfilter.DeploymentNotFound", ErrorCategory.ObjectNotFound, name);
}
