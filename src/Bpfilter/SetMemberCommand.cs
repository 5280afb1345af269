using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;

namespace Bpfilter;

/// <summary>
/// The shape of Add-BpfSetMember and Remove-BpfSetMember: one deployment and set by name, members as text (or piped),
/// all checked before any changes, applied in one map update per member, the set written out as it is afterwards.
/// </summary>
public abstract class SetMemberCommand : PSCmdlet
{
    private readonly List<string> _members = new();

    [Parameter(Mandatory = true, Position = 0)]
    [Alias("Deployment")]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1)]
    [ArgumentCompleter(typeof(SetNameCompleter))]
    public string SetName { get; set; } = "";

    [Parameter(Mandatory = true, Position = 2, ValueFromPipeline = true)]
    [Alias("Element")]
    public string[] Member { get; set; } = [];

    protected abstract string Verb { get; }
    protected abstract SetView Apply(IReadOnlyList<string> members);

    protected override void ProcessRecord() => _members.AddRange(Member);

    protected override void EndProcessing()
    {
        if (_members.Count == 0) return;
        if (!ShouldProcess($"set '{SetName}' of deployment '{Name}'", $"{Verb} {string.Join(", ", _members)}")) return;
        try
        {
            WriteObject(Apply(_members));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, SetName));
        }
    }
}
