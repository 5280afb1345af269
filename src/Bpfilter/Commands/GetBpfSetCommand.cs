using System.Management.Automation;
using Bpfilter.Engine.Deployment;

namespace Bpfilter.Commands;

/// <summary>Lists the named sets of deployments with their members.</summary>
[Cmdlet(VerbsCommon.Get, "BpfSet")]
[OutputType(typeof(SetView))]
public sealed class GetBpfSetCommand : DeploymentReaderCommand
{
    /// <summary>Only the sets with these names (wildcards allowed).</summary>
    [Parameter(Position = 1)]
    [SupportsWildcards]
    public string[]? SetName { get; set; }

    protected override IEnumerable<object> Read(string deployment)
    {
        var patterns = (SetName ?? ["*"]).Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToList();
        return DeploymentSets.Get(deployment).Where(s => patterns.Any(p => p.IsMatch(s.Name)));
    }
}
