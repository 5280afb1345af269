using System.Collections.ObjectModel;
using System.Management.Automation;
using Bpfilter.Engine;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>Reads ruleset files into ruleset objects.</summary>
[Cmdlet(VerbsData.Import, "BpfRuleset", DefaultParameterSetName = PathSet)]
[OutputType(typeof(Ruleset))]
public sealed class ImportBpfRulesetCommand : PSCmdlet
{
    private const string PathSet = "Path", LiteralPathSet = "LiteralPath";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    public string[] Path { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralPathSet)]
    [Alias("PSPath", "LP")]
    public string[] LiteralPath { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var file in ResolveFiles())
        {
            try
            {
                WriteObject(YamlRulesetReader.ReadFile(file));
            }
            catch (BpfilterException e)
            {
                WriteError(ErrorRecords.From(e, file));
            }
        }
    }

    private IEnumerable<string> ResolveFiles()
    {
        if (ParameterSetName == LiteralPathSet)
        {
            foreach (var literal in LiteralPath) yield return GetUnresolvedProviderPathFromPSPath(literal);
            yield break;
        }
        foreach (var pattern in Path)
        {
            Collection<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(pattern, out _);
            }
            catch (ItemNotFoundException e)
            {
                WriteError(new ErrorRecord(e, "Bpfilter.RulesetNotFound", ErrorCategory.ObjectNotFound, pattern));
                continue;
            }
            foreach (var file in resolved) yield return file;
        }
    }
}
