using System.Management.Automation;
using Bpfilter.Engine;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>Builds a ruleset from the hooked chains, user chains and sets piped or given; the model checks it whole.</summary>
[Cmdlet(VerbsCommon.New, "BpfRuleset")]
[OutputType(typeof(Ruleset))]
public sealed class NewBpfRulesetCommand : PSCmdlet
{
    private readonly List<Chain> _chains = new();
    private readonly List<UserChain> _userChains = new();
    private readonly List<NamedSet> _sets = new();

    [Parameter(Mandatory = true, Position = 0)]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipeline = true)]
    public Chain[] Chain { get; set; } = [];

    [Parameter(ValueFromPipeline = true)]
    public UserChain[] UserChain { get; set; } = [];

    [Parameter(ValueFromPipeline = true)]
    public NamedSet[] Set { get; set; } = [];

    protected override void ProcessRecord()
    {
        _chains.AddRange(Chain);
        _userChains.AddRange(UserChain);
        _sets.AddRange(Set);
        // What the command line gives stays bound while objects are piped in; clear it so it is added once.
        Chain = [];
        UserChain = [];
        Set = [];
    }

    protected override void EndProcessing()
    {
        try
        {
            WriteObject(new Ruleset(Name, _chains, null, _userChains, _sets));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }
}
