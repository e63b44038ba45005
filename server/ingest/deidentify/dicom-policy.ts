/**
 * What of a DICOM whole-slide instance may leave the hospital: the DICOM
 * PS3.15 Basic Application Level Confidentiality Profile (Annex E) applied
 * as an allow-list. Every attribute is named here with what becomes of it;
 * an attribute not named (and every private attribute) is removed, so a
 * scanner that adds a field cannot leak it. docs/dicom.md, "Ingest", lists
 * the table for curators.
 */

/**
 * - `keep`: copied as it is (a sequence: its items rewritten by the same table);
 * - `uid`: each UID replaced by a new one, the same new UID for the same
 *   original throughout the series (UIDs of the DICOM standard itself, under
 *   1.2.840.10008, are kept);
 * - `name`: the slide's new (nomenclature) name;
 * - `empty`: present with no value (type 2 attributes the IOD requires);
 * - `dummy`: a fixed value (type 1 attributes the IOD requires), given below;
 * - `empty-sequence`: a sequence without items (type 2 sequences).
 */
export type DicomAction = 'keep' | 'uid' | 'name' | 'empty' | 'dummy' | 'empty-sequence';

export interface DicomRule {
  /** The attribute's keyword, for the report and the docs. */
  keyword: string;
  /** Its VR, used when the original is Implicit VR and for values written here. */
  vr: string;
  action: DicomAction;
  /** For `dummy`. */
  value?: string;
}

/** The dummy date, time and date-time of type 1 attributes: dates are removed, not shifted. */
export const DUMMY_DATE = '19000101';
export const DUMMY_TIME = '000000';
export const DUMMY_DATETIME = '19000101000000';
/** Device Serial Number is type 1 in the Enhanced General Equipment module: a dummy replaces it. */
export const DUMMY_SERIAL = 'REMOVED';

const rules: [number, string, string, DicomAction, string?][] = [
  // SOP common, general image and series
  [0x0008_0005, 'SpecificCharacterSet', 'CS', 'keep'],
  [0x0008_0008, 'ImageType', 'CS', 'keep'],
  [0x0008_0016, 'SOPClassUID', 'UI', 'uid'],
  [0x0008_0018, 'SOPInstanceUID', 'UI', 'uid'],
  [0x0008_0020, 'StudyDate', 'DA', 'empty'],
  [0x0008_0023, 'ContentDate', 'DA', 'dummy', DUMMY_DATE],
  [0x0008_002a, 'AcquisitionDateTime', 'DT', 'dummy', DUMMY_DATETIME],
  [0x0008_0030, 'StudyTime', 'TM', 'empty'],
  [0x0008_0033, 'ContentTime', 'TM', 'dummy', DUMMY_TIME],
  [0x0008_0050, 'AccessionNumber', 'SH', 'empty'],
  [0x0008_0060, 'Modality', 'CS', 'keep'],
  [0x0008_0070, 'Manufacturer', 'LO', 'keep'],
  [0x0008_0090, 'ReferringPhysicianName', 'PN', 'empty'],
  [0x0008_1090, 'ManufacturerModelName', 'LO', 'keep'],
  [0x0008_1115, 'ReferencedSeriesSequence', 'SQ', 'keep'],
  [0x0008_1140, 'ReferencedImageSequence', 'SQ', 'keep'],
  [0x0008_114a, 'ReferencedInstanceSequence', 'SQ', 'keep'],
  [0x0008_1150, 'ReferencedSOPClassUID', 'UI', 'uid'],
  [0x0008_1155, 'ReferencedSOPInstanceUID', 'UI', 'uid'],
  [0x0008_1160, 'ReferencedFrameNumber', 'IS', 'keep'],
  [0x0008_2112, 'SourceImageSequence', 'SQ', 'keep'],
  [0x0008_9007, 'FrameType', 'CS', 'keep'],
  [0x0008_9205, 'PixelPresentation', 'CS', 'keep'],
  [0x0008_9206, 'VolumetricProperties', 'CS', 'keep'],
  [0x0008_9207, 'VolumeBasedCalculationTechnique', 'CS', 'keep'],
  [0x0008_9215, 'DerivationCodeSequence', 'SQ', 'keep'],
  // Code sequence items
  [0x0008_0100, 'CodeValue', 'SH', 'keep'],
  [0x0008_0102, 'CodingSchemeDesignator', 'SH', 'keep'],
  [0x0008_0103, 'CodingSchemeVersion', 'SH', 'keep'],
  [0x0008_0104, 'CodeMeaning', 'LO', 'keep'],
  [0x0008_0105, 'MappingResource', 'CS', 'keep'],
  [0x0008_0106, 'ContextGroupVersion', 'DT', 'keep'],
  [0x0008_010f, 'ContextIdentifier', 'CS', 'keep'],
  [0x0008_0117, 'ContextUID', 'UI', 'uid'],
  [0x0008_0119, 'LongCodeValue', 'UC', 'keep'],
  [0x0008_0120, 'URNCodeValue', 'UR', 'keep'],
  // Patient and de-identification
  [0x0010_0010, 'PatientName', 'PN', 'name'],
  [0x0010_0020, 'PatientID', 'LO', 'name'],
  [0x0010_0030, 'PatientBirthDate', 'DA', 'empty'],
  [0x0010_0040, 'PatientSex', 'CS', 'empty'],
  // Equipment
  [0x0018_0050, 'SliceThickness', 'DS', 'keep'],
  [0x0018_1000, 'DeviceSerialNumber', 'LO', 'dummy', DUMMY_SERIAL],
  [0x0018_1020, 'SoftwareVersions', 'LO', 'keep'],
  [0x0018_9220, 'FrameAcquisitionDuration', 'FD', 'keep'],
  // Study, series, frame of reference, multi-frame dimensions
  [0x0020_000d, 'StudyInstanceUID', 'UI', 'uid'],
  [0x0020_000e, 'SeriesInstanceUID', 'UI', 'uid'],
  [0x0020_0010, 'StudyID', 'SH', 'empty'],
  [0x0020_0011, 'SeriesNumber', 'IS', 'keep'],
  [0x0020_0013, 'InstanceNumber', 'IS', 'keep'],
  [0x0020_0052, 'FrameOfReferenceUID', 'UI', 'uid'],
  [0x0020_1040, 'PositionReferenceIndicator', 'LO', 'empty'],
  [0x0020_9056, 'StackID', 'SH', 'keep'],
  [0x0020_9057, 'InStackPositionNumber', 'UL', 'keep'],
  [0x0020_9111, 'FrameContentSequence', 'SQ', 'keep'],
  [0x0020_9128, 'TemporalPositionIndex', 'UL', 'keep'],
  [0x0020_9156, 'FrameAcquisitionNumber', 'US', 'keep'],
  [0x0020_9157, 'DimensionIndexValues', 'UL', 'keep'],
  [0x0020_9164, 'DimensionOrganizationUID', 'UI', 'uid'],
  [0x0020_9165, 'DimensionIndexPointer', 'AT', 'keep'],
  [0x0020_9167, 'FunctionalGroupPointer', 'AT', 'keep'],
  [0x0020_9221, 'DimensionOrganizationSequence', 'SQ', 'keep'],
  [0x0020_9222, 'DimensionIndexSequence', 'SQ', 'keep'],
  [0x0020_9311, 'DimensionOrganizationType', 'CS', 'keep'],
  [0x0020_9421, 'DimensionDescriptionLabel', 'LO', 'keep'],
  // Optical path
  [0x0022_0001, 'LightPathFilterPassThroughWavelength', 'US', 'keep'],
  [0x0022_0002, 'LightPathFilterPassBand', 'US', 'keep'],
  [0x0022_0003, 'ImagePathFilterPassThroughWavelength', 'US', 'keep'],
  [0x0022_0004, 'ImagePathFilterPassBand', 'US', 'keep'],
  [0x0022_0016, 'IlluminationTypeCodeSequence', 'SQ', 'keep'],
  [0x0022_0017, 'LightPathFilterTypeStackCodeSequence', 'SQ', 'keep'],
  [0x0022_0018, 'ImagePathFilterTypeStackCodeSequence', 'SQ', 'keep'],
  [0x0022_0019, 'LensesCodeSequence', 'SQ', 'keep'],
  [0x0022_0020, 'ChannelDescriptionCodeSequence', 'SQ', 'keep'],
  [0x0022_0055, 'IlluminationWaveLength', 'FL', 'keep'],
  [0x0022_0056, 'IlluminationPower', 'FL', 'keep'],
  [0x0022_0057, 'IlluminationBandwidth', 'FL', 'keep'],
  // Image pixel and presentation
  [0x0028_0002, 'SamplesPerPixel', 'US', 'keep'],
  [0x0028_0004, 'PhotometricInterpretation', 'CS', 'keep'],
  [0x0028_0006, 'PlanarConfiguration', 'US', 'keep'],
  [0x0028_0008, 'NumberOfFrames', 'IS', 'keep'],
  [0x0028_0010, 'Rows', 'US', 'keep'],
  [0x0028_0011, 'Columns', 'US', 'keep'],
  [0x0028_0030, 'PixelSpacing', 'DS', 'keep'],
  [0x0028_0100, 'BitsAllocated', 'US', 'keep'],
  [0x0028_0101, 'BitsStored', 'US', 'keep'],
  [0x0028_0102, 'HighBit', 'US', 'keep'],
  [0x0028_0103, 'PixelRepresentation', 'US', 'keep'],
  [0x0028_0301, 'BurnedInAnnotation', 'CS', 'keep'],
  [0x0028_0302, 'RecognizableVisualFeatures', 'CS', 'keep'],
  [0x0028_1050, 'WindowCenter', 'DS', 'keep'],
  [0x0028_1051, 'WindowWidth', 'DS', 'keep'],
  [0x0028_1052, 'RescaleIntercept', 'DS', 'keep'],
  [0x0028_1053, 'RescaleSlope', 'DS', 'keep'],
  [0x0028_1054, 'RescaleType', 'LO', 'keep'],
  [0x0028_2000, 'ICCProfile', 'OB', 'keep'],
  [0x0028_2002, 'ColorSpace', 'CS', 'keep'],
  [0x0028_2110, 'LossyImageCompression', 'CS', 'keep'],
  [0x0028_2112, 'LossyImageCompressionRatio', 'DS', 'keep'],
  [0x0028_2114, 'LossyImageCompressionMethod', 'CS', 'keep'],
  [0x0028_6010, 'RepresentativeFrameNumber', 'US', 'keep'],
  [0x0028_9110, 'PixelMeasuresSequence', 'SQ', 'keep'],
  [0x0028_9132, 'FrameVOILUTSequence', 'SQ', 'keep'],
  [0x0028_9145, 'PixelValueTransformationSequence', 'SQ', 'keep'],
  [0x2050_0020, 'PresentationLUTShape', 'CS', 'keep'],
  // Specimen and acquisition context
  [0x0040_0512, 'ContainerIdentifier', 'LO', 'name'],
  [0x0040_0513, 'IssuerOfTheContainerIdentifierSequence', 'SQ', 'empty-sequence'],
  [0x0040_0518, 'ContainerTypeCodeSequence', 'SQ', 'keep'],
  [0x0040_0551, 'SpecimenIdentifier', 'LO', 'name'],
  [0x0040_0554, 'SpecimenUID', 'UI', 'uid'],
  [0x0040_0555, 'AcquisitionContextSequence', 'SQ', 'empty-sequence'],
  [0x0040_0560, 'SpecimenDescriptionSequence', 'SQ', 'keep'],
  [0x0040_0562, 'IssuerOfTheSpecimenIdentifierSequence', 'SQ', 'empty-sequence'],
  [0x0040_0610, 'SpecimenPreparationSequence', 'SQ', 'empty-sequence'],
  [0x0040_0710, 'WholeSlideMicroscopyImageFrameTypeSequence', 'SQ', 'keep'],
  [0x0040_072a, 'XOffsetInSlideCoordinateSystem', 'DS', 'keep'],
  [0x0040_073a, 'YOffsetInSlideCoordinateSystem', 'DS', 'keep'],
  [0x0040_074a, 'ZOffsetInSlideCoordinateSystem', 'DS', 'keep'],
  // Whole slide microscopy image, tile organisation, optical paths
  [0x0048_0001, 'ImagedVolumeWidth', 'FL', 'keep'],
  [0x0048_0002, 'ImagedVolumeHeight', 'FL', 'keep'],
  [0x0048_0003, 'ImagedVolumeDepth', 'FL', 'keep'],
  [0x0048_0006, 'TotalPixelMatrixColumns', 'UL', 'keep'],
  [0x0048_0007, 'TotalPixelMatrixRows', 'UL', 'keep'],
  [0x0048_0008, 'TotalPixelMatrixOriginSequence', 'SQ', 'keep'],
  [0x0048_0010, 'SpecimenLabelInImage', 'CS', 'keep'],
  [0x0048_0011, 'FocusMethod', 'CS', 'keep'],
  [0x0048_0012, 'ExtendedDepthOfField', 'CS', 'keep'],
  [0x0048_0013, 'NumberOfFocalPlanes', 'US', 'keep'],
  [0x0048_0014, 'DistanceBetweenFocalPlanes', 'FL', 'keep'],
  [0x0048_0015, 'RecommendedAbsentPixelCIELabValue', 'US', 'keep'],
  [0x0048_0100, 'IlluminatorTypeCodeSequence', 'SQ', 'keep'],
  [0x0048_0102, 'ImageOrientationSlide', 'DS', 'keep'],
  [0x0048_0105, 'OpticalPathSequence', 'SQ', 'keep'],
  [0x0048_0106, 'OpticalPathIdentifier', 'SH', 'keep'],
  [0x0048_0107, 'OpticalPathDescription', 'ST', 'keep'],
  [0x0048_0108, 'IlluminationColorCodeSequence', 'SQ', 'keep'],
  [0x0048_0110, 'SpecimenReferenceSequence', 'SQ', 'keep'],
  [0x0048_0111, 'CondenserLensPower', 'DS', 'keep'],
  [0x0048_0112, 'ObjectiveLensPower', 'DS', 'keep'],
  [0x0048_0113, 'ObjectiveLensNumericalAperture', 'DS', 'keep'],
  [0x0048_0200, 'ReferencedImageNavigationSequence', 'SQ', 'keep'],
  [0x0048_0201, 'TopLeftHandCornerOfLocalizerArea', 'US', 'keep'],
  [0x0048_0202, 'BottomRightHandCornerOfLocalizerArea', 'US', 'keep'],
  [0x0048_0207, 'OpticalPathIdentificationSequence', 'SQ', 'keep'],
  [0x0048_021a, 'PlanePositionSlideSequence', 'SQ', 'keep'],
  [0x0048_021e, 'ColumnPositionInTotalImagePixelMatrix', 'SL', 'keep'],
  [0x0048_021f, 'RowPositionInTotalImagePixelMatrix', 'SL', 'keep'],
  [0x0048_0301, 'PixelOriginInterpretation', 'CS', 'keep'],
  [0x0048_0302, 'NumberOfOpticalPaths', 'UL', 'keep'],
  [0x0048_0303, 'TotalPixelMatrixFocalPlanes', 'UL', 'keep'],
  // Multi-frame functional groups
  [0x5200_9229, 'SharedFunctionalGroupsSequence', 'SQ', 'keep'],
  [0x5200_9230, 'PerFrameFunctionalGroupsSequence', 'SQ', 'keep'],
];

export const DICOM_RULES: ReadonlyMap<number, DicomRule> = new Map(rules.map(([tag, keyword, vr, action, value]) => [tag, { keyword, vr, action, value }]));

/** Attributes ingest writes itself in every published instance (PS3.15 E.1.1 and the series' own). */
export const DICOM_WRITTEN: ReadonlyMap<number, string> = new Map([
  [0x0012_0062, 'PatientIdentityRemoved'],
  [0x0012_0063, 'DeidentificationMethod'],
  [0x0012_0064, 'DeidentificationMethodCodeSequence'],
  [0x0028_0303, 'LongitudinalTemporalInformationModified'],
]);

/** Attributes whose values name the patient, the study, the specimen or the site: never excused from the byte search. */
export const STRICT_KEYWORDS = /Patient|Study|Accession|Physician|Operator|Institution|Station|Container|Specimen|Serial|Date|Time|UID|Issuer|Barcode|Label|Description|Comment|ID$/;

/** Keywords of well-known attributes the table removes, for the report (others are named by their tag). */
export const REMOVED_KEYWORDS: ReadonlyMap<number, string> = new Map([
  [0x0008_0012, 'InstanceCreationDate'],
  [0x0008_0013, 'InstanceCreationTime'],
  [0x0008_0014, 'InstanceCreatorUID'],
  [0x0008_0021, 'SeriesDate'],
  [0x0008_0022, 'AcquisitionDate'],
  [0x0008_0031, 'SeriesTime'],
  [0x0008_0032, 'AcquisitionTime'],
  [0x0008_0080, 'InstitutionName'],
  [0x0008_0081, 'InstitutionAddress'],
  [0x0008_0201, 'TimezoneOffsetFromUTC'],
  [0x0008_1010, 'StationName'],
  [0x0008_1030, 'StudyDescription'],
  [0x0008_103e, 'SeriesDescription'],
  [0x0008_1040, 'InstitutionalDepartmentName'],
  [0x0008_1048, 'PhysiciansOfRecord'],
  [0x0008_1050, 'PerformingPhysicianName'],
  [0x0008_1060, 'NameOfPhysiciansReadingStudy'],
  [0x0008_1070, 'OperatorsName'],
  [0x0008_2111, 'DerivationDescription'],
  [0x0010_1000, 'OtherPatientIDs'],
  [0x0010_1001, 'OtherPatientNames'],
  [0x0010_1010, 'PatientAge'],
  [0x0018_1030, 'ProtocolName'],
  [0x0018_9074, 'FrameAcquisitionDateTime'],
  [0x0018_9151, 'FrameReferenceDateTime'],
  [0x0020_4000, 'ImageComments'],
  [0x0020_9161, 'ConcatenationUID'],
  [0x0020_9162, 'InConcatenationNumber'],
  [0x0020_9163, 'InConcatenationTotalNumber'],
  [0x0020_9228, 'ConcatenationFrameOffsetNumber'],
  [0x0020_0242, 'SOPInstanceUIDOfConcatenationSource'],
  [0x0040_0515, 'AlternateContainerIdentifierSequence'],
  [0x0040_051a, 'ContainerDescription'],
  [0x0040_0600, 'SpecimenShortDescription'],
  [0x0040_0602, 'SpecimenDetailedDescription'],
  [0x0048_0120, 'PaletteColorLookupTableSequence'],
  [0x2200_0002, 'LabelText'],
  [0x2200_0005, 'BarcodeValue'],
]);

/** PS3.15 Table CID 7050: the profile and the options ingest implements, written in De-identification Method Code Sequence. */
export const DEIDENTIFICATION_CODES: readonly { value: string; meaning: string }[] = [{ value: '113100', meaning: 'Basic Application Confidentiality Profile' }];

/** De-identification Method (LO, at most 64 characters). */
export const DEIDENTIFICATION_METHOD = 'Slidebank ingest: PS3.15 E Basic Profile, dates removed';

/** UIDs of the DICOM standard itself (SOP classes, transfer syntaxes, coding schemes): not identifying, never replaced. */
export const isStandardUid = (uid: string) => uid.startsWith('1.2.840.10008.');
